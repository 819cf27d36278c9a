"""Admin of the order analytics (seed 002): windows with a revenue chart per product
(final and open windows drawn apart), recomputing a product's windows from the
stored orders, releasing late orders into their final windows, and the
processed orders (filterable by late and released).

Both tables grow with the traffic, so both lists cost the same at millions of
rows as at none (console/admin_base.py's LargeTableAdmin): the last 24 hours
before the newest row by default, products and categories from the catalog
(streams.products, a declared lookup), search by exact key, never a count.

Recomputing needs the windows' change permission and is logged on each
product's latest window; releasing needs `streams.release_late_orders` and is
logged on each corrected window (by the service). Discovered through
streams/admin.py.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpRequest

from console.admin_base import DeletableReadOnlyAdmin, LargeTableAdmin, RecentWindowFilter, log_changes
from streams.products.models import Product

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


CATALOG_CHOICES = 100  # filter choices shown from the catalog; any other id still works by URL


class ProductFilter(admin.SimpleListFilter):
    """Products of the catalog (a small table), never a DISTINCT over the rows.
    Named as Django's own field filter was, so links to `?product_id__exact=` hold."""

    title = "product"
    parameter_name = "product_id__exact"

    def lookups(self, request, model_admin):
        ids = Product.objects.order_by("product_id").values_list("product_id", flat=True)[:CATALOG_CHOICES]
        return [(p, p) for p in ids]

    def queryset(self, request, queryset):
        return queryset.filter(product_id=self.value()) if self.value() else queryset


class CategoryFilter(admin.SimpleListFilter):
    """Categories of the catalog (its index on category), never a DISTINCT over the orders."""

    title = "category"
    parameter_name = "category__exact"

    def lookups(self, request, model_admin):
        categories = Product.objects.exclude(category="").order_by("category").values_list("category", flat=True)
        return [(c, c) for c in categories.distinct()[:CATALOG_CHOICES]]

    def queryset(self, request, queryset):
        return queryset.filter(category=self.value()) if self.value() else queryset


class ReleasedFilter(admin.SimpleListFilter):
    """Only late orders are ever released: "yes" reads the index of late orders."""

    title = "released"
    parameter_name = "released"

    def lookups(self, request, model_admin):
        return [("yes", "released"), ("no", "not released")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(late=True, released_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(released_at__isnull=True)
        return queryset


class WindowStartFilter(RecentWindowFilter):
    title = "window start (before the newest window)"
    field = "window_start"


class OrderedAtFilter(RecentWindowFilter):
    title = "ordered (before the newest order)"
    field = "ordered_at"

    def after(self, queryset, start):
        # An order's window_start is its ordered_at floored to its window (a minute; at most a
        # day is assumed of any length used before): the same bound on it lets the
        # (product_id, window_start) index read a product's orders of the window only, where
        # PostgreSQL otherwise reads all of the product's orders into a bitmap.
        slack = timedelta(seconds=settings.ORDERS_WINDOW_SECONDS) + timedelta(days=1)
        return queryset.filter(ordered_at__gt=start, window_start__gt=start - slack)


@admin.register(ProductWindow)
class ProductWindowAdmin(LargeTableAdmin):
    """Windows, newest first, of the last day before the newest window by default.
    Search: a product id, or a product name as the catalog has it (within the time window)."""

    change_list_template = "admin/streams/productwindow/change_list.html"
    list_display = ["window_start", "window_end", "product_id", "product_name", "final", "order_count",
                    "total_revenue", "avg_order_value", "late_count", "late_revenue", "updated_at"]
    list_filter = ["final", ProductFilter, WindowStartFilter]
    search_fields = ["=product_id"]
    search_help_text = "A product id, or a product's name in the catalog (exact, any case)."
    readonly_fields = list_display + ["finalized_at", "final_published_at"]
    actions = ["rebuild_windows", "release_late"]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        named = Product.objects.filter(name__iexact=term).values_list("product_id", flat=True)
        ids = {term, *named[:CATALOG_CHOICES]}
        if len(ids) == 1:
            return queryset.filter(product_id=term), False
        return queryset.filter(product_id__in=sorted(ids)), False

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
class ProcessedOrderAdmin(LargeTableAdmin, DeletableReadOnlyAdmin):
    """Orders newest first, of the last day before the newest order by default; every
    filter is served by an index within that window (late orders by their partial
    index). Search: an order id (the key) or else a user id (its index with the order's
    time, so a user's newest orders come without sorting all of theirs)."""

    list_display = ["order_id", "ordered_at", "product_id", "product_name", "category", "amount", "user_id",
                    "window_start", "processed_at", "late", "released_at"]
    list_filter = ["late", ReleasedFilter, ProductFilter, CategoryFilter, OrderedAtFilter]
    search_fields = ["=order_id", "=user_id"]
    search_help_text = "An order id, or else a user id (exact)."
    readonly_fields = [f.name for f in ProcessedOrder._meta.fields]

    def search_is_keyed(self, term: str) -> bool:
        return True  # an order by its key, or a user's orders by (user_id, ordered_at): any age

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        if queryset.filter(order_id=term).exists():
            return queryset.filter(order_id=term), False
        return queryset.filter(user_id=term), False
