"""Read-only API of the order analytics and sensor/activity pipelines.

Registered on the project router by `register(router)` (console/urls.py):

    /api/order-windows/            tumbling windows (?product_id=&since=&until=)
    /api/processed-orders/         stored enriched orders (?product_id=&since=&until=)
    /api/sensor-readings/          stored sensor readings (?sensor_id=&status=&since=&until=)
    /api/sensor-readings/export/   processed_data_sensor.csv (streamed, same filters)
    /api/activity-events/          stored user activity (?user_id=&action=&since=&until=)
    /api/activity-events/export/   processed_data_activity.csv (streamed, same filters)

Each needs the view permission of its model (exports included: they hold
user and session ids). Processed orders, readings and activity grow with the
traffic: they page with cursors, newest first, and are never counted.
"""

from __future__ import annotations

import django_filters
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action

from console.filters import IsoDateTimeFilter
from console.pagination import NewestFirstCursorPagination

from .models import ActivityEvent, ProcessedOrder, ProductWindow, SensorReading
from .readings import ACTIVITY, SENSOR, export_filename, export_rows

# ---------------------------------------------------------------- serializers


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


class SensorReadingSerializer(serializers.ModelSerializer):
    class Meta:
        model = SensorReading
        fields = ["event_id", "timestamp", "sensor_id", "temperature_celsius", "humidity_percent", "status",
                  "stored_at"]


class ActivityEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = ActivityEvent
        fields = ["event_id", "timestamp", "user_id", "session_id", "action", "details", "stored_at"]


# -------------------------------------------------------------------- filters


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


class SensorReadingFilter(django_filters.FilterSet):
    since = IsoDateTimeFilter(field_name="timestamp", lookup_expr="gte")
    until = IsoDateTimeFilter(field_name="timestamp", lookup_expr="lt")

    class Meta:
        model = SensorReading
        fields = ["sensor_id", "status", "since", "until"]


class ActivityEventFilter(django_filters.FilterSet):
    since = IsoDateTimeFilter(field_name="timestamp", lookup_expr="gte")
    until = IsoDateTimeFilter(field_name="timestamp", lookup_expr="lt")

    class Meta:
        model = ActivityEvent
        fields = ["user_id", "session_id", "action", "since", "until"]


# ---------------------------------------------------------------------- views


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


def _csv_response(kind: str, queryset) -> StreamingHttpResponse:
    response = StreamingHttpResponse(export_rows(kind, queryset), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{export_filename(kind)}"'
    return response


class SensorReadingViewSet(viewsets.ReadOnlyModelViewSet):
    """Standardized sensor readings with their status (Low / Normal / Warning)."""

    queryset = SensorReading.objects.order_by("-timestamp", "-id")  # the export's order; pages are by -id
    serializer_class = SensorReadingSerializer
    pagination_class = NewestFirstCursorPagination
    filterset_class = SensorReadingFilter

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=False, methods=["get"], pagination_class=None)
    def export(self, request, *args, **kwargs):
        """processed_data_sensor.csv of the (filtered) readings, streamed."""
        return _csv_response(SENSOR, self.filter_queryset(self.get_queryset()))


class ActivityEventViewSet(viewsets.ReadOnlyModelViewSet):
    """Standardized user activity events."""

    queryset = ActivityEvent.objects.order_by("-timestamp", "-id")  # the export's order; pages are by -id
    serializer_class = ActivityEventSerializer
    pagination_class = NewestFirstCursorPagination
    filterset_class = ActivityEventFilter

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=False, methods=["get"], pagination_class=None)
    def export(self, request, *args, **kwargs):
        """processed_data_activity.csv of the (filtered) events, streamed."""
        return _csv_response(ACTIVITY, self.filter_queryset(self.get_queryset()))


def register(router) -> None:
    router.register("order-windows", ProductWindowViewSet, basename="order-window")
    router.register("processed-orders", ProcessedOrderViewSet, basename="processed-order")
    router.register("sensor-readings", SensorReadingViewSet, basename="sensor-reading")
    router.register("activity-events", ActivityEventViewSet, basename="activity-event")
