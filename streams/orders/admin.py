"""Admin of the order analytics (seed 002): windows with a revenue chart per product,
recomputing a product's windows from the stored orders, and the processed orders.

Recomputing needs the windows' change permission and is logged on each
product's latest window. Discovered through streams/admin.py. Imports
console's admin bases and this package.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.http import HttpRequest

from console.admin_base import DeletableReadOnlyAdmin

from .models import ProcessedOrder, ProductWindow
from .services import order_windows_rebuild

CHART_MAX_WINDOWS = 120
CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 860, 220, 40


def revenue_chart(windows: list[ProductWindow]) -> dict | None:
    """Bar geometry for an inline SVG of revenue per window (oldest left)."""
    if not windows:
        return None
    top = max(w.total_revenue for w in windows) or Decimal(1)
    plot_w, plot_h = CHART_WIDTH - 2 * CHART_PAD, CHART_HEIGHT - 2 * CHART_PAD
    step = plot_w / len(windows)
    bars = []
    for i, w in enumerate(windows):
        height = float(w.total_revenue / top) * plot_h
        bars.append({
            "x": round(CHART_PAD + i * step + step * 0.1, 1),
            "y": round(CHART_PAD + plot_h - height, 1),
            "width": round(max(step * 0.8, 1), 1),
            "height": round(height, 1),
            "title": f"{w.window_start:%Y-%m-%d %H:%M} UTC: {w.total_revenue} revenue, {w.order_count} orders, "
                     f"avg {w.avg_order_value}",
        })
    return {
        "width": CHART_WIDTH, "height": CHART_HEIGHT, "pad": CHART_PAD,
        "baseline": CHART_HEIGHT - CHART_PAD, "right": CHART_WIDTH - CHART_PAD,
        "bars": bars, "max": top,
        "first": windows[0].window_start, "last": windows[-1].window_start,
        "product": f"{windows[-1].product_id} {windows[-1].product_name}",
    }


@admin.register(ProductWindow)
class ProductWindowAdmin(admin.ModelAdmin):
    change_list_template = "admin/streams/productwindow/change_list.html"
    list_display = ["window_start", "window_end", "product_id", "product_name", "order_count",
                    "total_revenue", "avg_order_value", "updated_at"]
    list_filter = ["product_id", "window_start"]
    date_hierarchy = "window_start"
    search_fields = ["product_id", "product_name"]
    readonly_fields = list_display
    actions = ["rebuild_windows"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if context and "cl" in context:
            product = request.GET.get("product_id__exact") or request.GET.get("product_id")
            if product:
                recent = list(context["cl"].queryset.filter(product_id=product)
                              .order_by("-window_start")[:CHART_MAX_WINDOWS])
                context["revenue_chart"] = revenue_chart(recent[::-1])
            else:
                context["chart_hint"] = True
        return response

    @admin.action(permissions=["change"], description="Recompute the selected products' windows from stored orders")
    def rebuild_windows(self, request: HttpRequest, queryset) -> None:
        products = sorted(set(queryset.values_list("product_id", flat=True)))
        total = sum(order_windows_rebuild(product_id=p) for p in products)
        # One audit entry per product (on its latest window).
        latest = queryset.order_by("product_id", "-window_start").distinct("product_id")
        LogEntry.objects.log_actions(
            user_id=request.user.pk, queryset=list(latest), action_flag=CHANGE,
            change_message="Recomputed this product's windows from stored orders",
        )
        self.message_user(
            request, f"Recomputed {total} window(s) of {len(products)} product(s) from the stored orders.",
            messages.SUCCESS,
        )


@admin.register(ProcessedOrder)
class ProcessedOrderAdmin(DeletableReadOnlyAdmin):
    list_display = ["order_id", "ordered_at", "product_id", "product_name", "category", "amount", "user_id",
                    "window_start", "processed_at"]
    list_filter = ["product_id", "category", "ordered_at"]
    date_hierarchy = "ordered_at"
    search_fields = ["order_id", "user_id", "product_id"]
    readonly_fields = [f.name for f in ProcessedOrder._meta.fields]
