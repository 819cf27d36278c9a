"""API of the order analytics (seed 002), registered by `register(router)`:

    /api/order-windows/                      tumbling windows (?product_id=&since=&until=&final=)
    /api/order-windows/<id>/release-late/    POST: release its late orders (streams.release_late_orders)
    /api/processed-orders/                   stored enriched orders (?product_id=&since=&until=&late=&released=)

Each read needs the view permission of its model; the release, its own. Both tables grow with the
traffic: they page with cursors, newest first, and are never counted; every filter is served by an
index (late orders by a partial one, a user's orders by (user_id, ordered_at)), so a page costs the
same at millions of rows as at none (docs/streams.md).
"""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from console.filters import IsoDateTimeFilter
from console.pagination import NewestFirstCursorPagination

from .models import ProcessedOrder, ProductWindow
from .services import order_windows_release_late


class ProductWindowSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProductWindow
        fields = ["id", "product_id", "product_name", "window_start", "window_end", "order_count",
                  "total_revenue", "avg_order_value", "final", "finalized_at", "late_count", "late_revenue",
                  "updated_at"]


class ProcessedOrderSerializer(serializers.ModelSerializer):
    timestamp = serializers.DateTimeField(source="ordered_at")

    class Meta:
        model = ProcessedOrder
        fields = ["order_id", "user_id", "product_id", "product_name", "category", "amount", "timestamp",
                  "window_start", "processed_at", "stored_at", "late", "released_at"]


class ReleaseLateSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField(default=False, help_text="Say what would be released, change nothing.")


class ProductWindowFilter(django_filters.FilterSet):
    since = IsoDateTimeFilter(field_name="window_start", lookup_expr="gte",
                                             help_text="Windows starting at or after this time (ISO 8601).")
    until = IsoDateTimeFilter(field_name="window_start", lookup_expr="lt",
                                             help_text="Windows starting before this time (ISO 8601).")

    class Meta:
        model = ProductWindow
        fields = ["product_id", "final", "since", "until"]


class ProcessedOrderFilter(django_filters.FilterSet):
    since = IsoDateTimeFilter(field_name="ordered_at", lookup_expr="gte")
    until = IsoDateTimeFilter(field_name="ordered_at", lookup_expr="lt")
    released = django_filters.BooleanFilter(method="filter_released",
                                            help_text="Late orders an operator released into their window.")

    def filter_released(self, queryset, name, value):
        # Only late orders are released: saying so lets `true` read the index of late orders.
        if value:
            return queryset.filter(late=True, released_at__isnull=False)
        return queryset.filter(released_at__isnull=True)

    class Meta:
        model = ProcessedOrder
        fields = ["product_id", "user_id", "order_id", "late", "released", "since", "until"]


class NewestWindowFirstPagination(NewestFirstCursorPagination):
    """Windows newest first over their start's index (a product's over the natural key);
    the windows of one start, one per product, are told apart by the product."""

    ordering = ("-window_start", "product_id")


class ProductWindowViewSet(viewsets.ReadOnlyModelViewSet):
    """1-minute tumbling windows per product (order_count, total_revenue, avg_order_value)."""

    queryset = ProductWindow.objects.all()
    serializer_class = ProductWindowSerializer
    pagination_class = NewestWindowFirstPagination
    filterset_class = ProductWindowFilter
    action_permissions = {"release_late": ["streams.release_late_orders"]}

    @extend_schema(request=ReleaseLateSerializer, responses={200: None})
    @action(detail=True, methods=["post"], url_path="release-late")
    def release_late(self, request, pk=None, format=None):
        """Release the window's late orders into its totals: an audited correction, exactly once
        (a second release finds nothing to release), then the window is republished as final."""
        window = self.get_object()
        body = ReleaseLateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if body.validated_data["dry_run"]:
            return Response({"window": window.pk, "dry_run": True, "orders": window.late_count,
                             "revenue": str(window.late_revenue)})
        result = order_windows_release_late(windows=[window], by=request.user)
        window.refresh_from_db()
        return Response({"window": window.pk, "dry_run": False, "orders": result.orders,
                         "revenue": str(result.revenue), "published": result.published,
                         "order_count": window.order_count, "total_revenue": str(window.total_revenue)},
                        status=status.HTTP_200_OK)


class NewestOrderFirstPagination(NewestFirstCursorPagination):
    """Processed orders are keyed by their order id: newest by the order's own time,
    over its index; orders of the same instant are told apart by the key, so no
    page repeats or skips one."""

    ordering = ("-ordered_at", "-pk")


class ProcessedOrderViewSet(viewsets.ReadOnlyModelViewSet):
    """Validated, enriched orders as the window consumer stored them."""

    queryset = ProcessedOrder.objects.all()
    serializer_class = ProcessedOrderSerializer
    pagination_class = NewestOrderFirstPagination
    filterset_class = ProcessedOrderFilter
    lookup_field = "order_id"


def register(router) -> None:
    router.register("order-windows", ProductWindowViewSet, basename="order-window")
    router.register("processed-orders", ProcessedOrderViewSet, basename="processed-order")
