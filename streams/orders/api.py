"""Read-only API of the order analytics (seed 002), registered by `register(router)`:

    /api/order-windows/            tumbling windows (?product_id=&since=&until=)
    /api/processed-orders/         stored enriched orders (?product_id=&since=&until=)

Each needs the view permission of its model. Processed orders grow with the
traffic: they page with cursors, newest first, and are never counted.
Imports console's API pieces and this package.
"""

from __future__ import annotations

import django_filters
from rest_framework import serializers, viewsets

from console.filters import IsoDateTimeFilter
from console.pagination import NewestFirstCursorPagination

from .models import ProcessedOrder, ProductWindow


class ProductWindowSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProductWindow
        fields = ["product_id", "product_name", "window_start", "window_end", "order_count",
                  "total_revenue", "avg_order_value", "updated_at"]


class ProcessedOrderSerializer(serializers.ModelSerializer):
    timestamp = serializers.DateTimeField(source="ordered_at")

    class Meta:
        model = ProcessedOrder
        fields = ["order_id", "user_id", "product_id", "product_name", "category", "amount", "timestamp",
                  "window_start", "processed_at", "stored_at"]


class ProductWindowFilter(django_filters.FilterSet):
    since = IsoDateTimeFilter(field_name="window_start", lookup_expr="gte",
                                             help_text="Windows starting at or after this time (ISO 8601).")
    until = IsoDateTimeFilter(field_name="window_start", lookup_expr="lt",
                                             help_text="Windows starting before this time (ISO 8601).")

    class Meta:
        model = ProductWindow
        fields = ["product_id", "since", "until"]


class ProcessedOrderFilter(django_filters.FilterSet):
    since = IsoDateTimeFilter(field_name="ordered_at", lookup_expr="gte")
    until = IsoDateTimeFilter(field_name="ordered_at", lookup_expr="lt")

    class Meta:
        model = ProcessedOrder
        fields = ["product_id", "user_id", "order_id", "since", "until"]


class ProductWindowViewSet(viewsets.ReadOnlyModelViewSet):
    """1-minute tumbling windows per product (order_count, total_revenue, avg_order_value)."""

    queryset = ProductWindow.objects.order_by("-window_start", "product_id")
    serializer_class = ProductWindowSerializer
    filterset_class = ProductWindowFilter


class ProcessedOrderViewSet(viewsets.ReadOnlyModelViewSet):
    """Validated, enriched orders as the window consumer stored them."""

    queryset = ProcessedOrder.objects.all()
    serializer_class = ProcessedOrderSerializer
    pagination_class = NewestFirstCursorPagination
    filterset_class = ProcessedOrderFilter
    lookup_field = "order_id"


def register(router) -> None:
    router.register("order-windows", ProductWindowViewSet, basename="order-window")
    router.register("processed-orders", ProcessedOrderViewSet, basename="processed-order")
