"""Admin of the order analytics (seed 002): windows with a revenue chart per product
(final and open windows drawn apart), recomputing a product's windows from the
stored orders, releasing late orders into their final windows, and the
processed orders (filterable by late and released).

Recomputing needs the windows' change permission and is logged on each
product's latest window; releasing needs `streams.release_late_orders` and is
logged on each corrected window (by the service). Discovered through
streams/admin.py.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib import admin, messages
from django.http import HttpRequest

from console.admin_base import DeletableReadOnlyAdmin, log_changes

from .models import ProcessedOrder, ProductWindow
from .services import order_windows_rebuild, order_windows_release_late

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
            "final": w.final,
            "title": f"{w.window_start:%Y-%m-%d %H:%M} UTC ({'final' if w.final else 'open'}): "
                     f"{w.total_revenue} revenue, {w.order_count} orders, avg {w.avg_order_value}"
                     + (f"; {w.late_count} late order(s) held, {w.late_revenue} revenue" if w.late_count else ""),
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
    list_display = ["window_start", "window_end", "product_id", "product_name", "final", "order_count",
                    "total_revenue", "avg_order_value", "late_count", "late_revenue", "updated_at"]
    list_filter = ["final", "product_id", "window_start"]
    date_hierarchy = "window_start"
    search_fields = ["product_id", "product_name"]
    readonly_fields = list_display + ["finalized_at", "final_published_at"]
    actions = ["rebuild_windows", "release_late"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_release_late_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("streams.release_late_orders")

    @admin.action(permissions=["release_late"],
                  description="Release the selected windows' late orders into their totals (audited, republished)")
    def release_late(self, request: HttpRequest, queryset) -> None:
        windows = list(queryset.filter(late_count__gt=0))
        if not windows:
            self.message_user(request, "None of the selected windows holds late orders: nothing changed.",
                              messages.WARNING)
            return
        result = order_windows_release_late(windows=windows, by=request.user)
        text = (f"Released {result.orders} late order(s), revenue {result.revenue}, into {result.windows} "
                f"final window(s).")
        if result.windows and not result.published:
            text += " Kafka did not acknowledge the republish: the order_windows consumer publishes them next."
        self.message_user(request, text, messages.SUCCESS if result.published else messages.WARNING)

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
        log_changes(user=request.user, objects=latest, message="Recomputed this product's windows from stored orders")
        self.message_user(
            request, f"Recomputed {total} window(s) of {len(products)} product(s) from the stored orders.",
            messages.SUCCESS,
        )


@admin.register(ProcessedOrder)
class ProcessedOrderAdmin(DeletableReadOnlyAdmin):
    list_display = ["order_id", "ordered_at", "product_id", "product_name", "category", "amount", "user_id",
                    "window_start", "processed_at", "late", "released_at"]
    list_filter = ["late", ("released_at", admin.EmptyFieldListFilter), "product_id", "category", "ordered_at"]
    date_hierarchy = "ordered_at"
    search_fields = ["order_id", "user_id", "product_id"]
    readonly_fields = [f.name for f in ProcessedOrder._meta.fields]
