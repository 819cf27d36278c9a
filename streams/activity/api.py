"""Read-only API of the sensor and user-activity streams (seed 003), registered by `register(router)`:

    /api/sensor-readings/          stored sensor readings (?sensor_id=&status=&since=&until=)
    /api/sensor-readings/export/   processed_data_sensor.csv (streamed, same filters)
    /api/activity-events/          stored user activity (?user_id=&action=&since=&until=)
    /api/activity-events/export/   processed_data_activity.csv (streamed, same filters)

Each needs the view permission of its model (exports included: they hold
user and session ids). The tables grow with the traffic: they page with
cursors, newest first, and are never counted.
"""

from __future__ import annotations

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action

from console.filters import IsoDateTimeFilter
from console.pagination import NewestFirstCursorPagination

from .export import ACTIVITY, SENSOR, csv_download
from .models import ActivityEvent, SensorReading


class SensorReadingSerializer(serializers.ModelSerializer):
    class Meta:
        model = SensorReading
        fields = ["event_id", "timestamp", "sensor_id", "temperature_celsius", "humidity_percent", "status",
                  "stored_at"]


class ActivityEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = ActivityEvent
        fields = ["event_id", "timestamp", "user_id", "session_id", "action", "details", "stored_at"]


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
        return csv_download(SENSOR, self.filter_queryset(self.get_queryset()))


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
        return csv_download(ACTIVITY, self.filter_queryset(self.get_queryset()))


def register(router) -> None:
    router.register("sensor-readings", SensorReadingViewSet, basename="sensor-reading")
    router.register("activity-events", ActivityEventViewSet, basename="activity-event")
