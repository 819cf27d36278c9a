"""The telemetry API (seed 000): /api/metrics/ and /api/workorders/.

GET lists the stored rows (the model's view permission); POST publishes one
event or an array (`streams.publish_telemetry`) through publish.py, the path
the ASGI hot path (asgi.py) shares. Registered by `register(router)` from
streams/urls.py.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from console.pagination import NewestFirstCursorPagination
from console.parsers import StrictJSONParser as JSONParser
from console.permissions import ModelPermissions
from console.publishing import ACCEPTED, AUTHENTICATION, INVALID, UNAVAILABLE
from console.throttles import AnonThrottle, TelemetryThrottle

from .models import MachineMetric, WorkOrderReading
from .publish import METRICS, WORKORDERS, CanPublishTelemetry, TelemetryKind, telemetry_ingest


class MetricEventSchema(serializers.Serializer):
    id = serializers.IntegerField(min_value=0, help_text="Machine parameter id.")
    val = serializers.FloatField(help_text="Reading (finite number).")
    time = serializers.IntegerField(help_text="Epoch seconds, 2000-01-01 .. 2100-01-01.")


class WorkOrderEventSchema(serializers.Serializer):
    time = serializers.IntegerField(help_text="Epoch seconds, 2000-01-01 .. 2100-01-01.")
    product = serializers.IntegerField(min_value=0)
    production = serializers.FloatField(min_value=0, help_text="Cumulative output of the running order.")


class MachineMetricSerializer(serializers.ModelSerializer):
    class Meta:
        model = MachineMetric
        fields = ["parameter_id", "value", "time", "received_at"]


class WorkOrderReadingSerializer(serializers.ModelSerializer):
    class Meta:
        model = WorkOrderReading
        fields = ["product", "production", "time", "received_at"]


class TelemetryViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Read persisted rows (GET) or publish events (POST: one object or a JSON array)."""

    authentication_classes = AUTHENTICATION
    parser_classes = [JSONParser]
    pagination_class = NewestFirstCursorPagination  # the tables grow with every machine: never counted
    kind: TelemetryKind

    def get_permissions(self):
        if self.action == "create":
            return [CanPublishTelemetry()]
        return [ModelPermissions()]

    def get_throttles(self):
        # Machines are counted in their own scope (unlimited unless THROTTLE_TELEMETRY_RATE is set).
        if self.action == "create":
            return [AnonThrottle(), TelemetryThrottle()]
        return super().get_throttles()

    def create(self, request: Request, *args, **kwargs) -> Response:
        status_code, body, headers = telemetry_ingest(kind=self.kind, data=request.data)
        return Response(body, status=status_code, headers=headers)


@extend_schema(tags=["telemetry"])
class MetricViewSet(TelemetryViewSet):
    kind = METRICS
    serializer_class = MachineMetricSerializer
    queryset = MachineMetric.objects.all()
    filterset_fields = ["parameter_id", "time"]

    @extend_schema(
        summary="Publish machine metrics",
        description="One `{id, val, time}` object or a JSON array of them (up to TELEMETRY_BATCH_MAX_EVENTS). "
                    "202 once Kafka acknowledged; an invalid event rejects the whole request.",
        request=MetricEventSchema,
        responses={202: ACCEPTED, 400: INVALID, 503: UNAVAILABLE},
    )
    def create(self, request: Request, *args, **kwargs) -> Response:
        return super().create(request, *args, **kwargs)


@extend_schema(tags=["telemetry"])
class WorkOrderViewSet(TelemetryViewSet):
    kind = WORKORDERS
    serializer_class = WorkOrderReadingSerializer
    queryset = WorkOrderReading.objects.all()
    filterset_fields = ["product", "time"]

    @extend_schema(
        summary="Publish work-order readings",
        description="One `{time, product, production}` object or a JSON array of them "
                    "(up to TELEMETRY_BATCH_MAX_EVENTS). 202 once Kafka acknowledged.",
        request=WorkOrderEventSchema,
        responses={202: ACCEPTED, 400: INVALID, 503: UNAVAILABLE},
    )
    def create(self, request: Request, *args, **kwargs) -> Response:
        return super().create(request, *args, **kwargs)


def register(router) -> None:
    router.register("metrics", MetricViewSet, basename="metric")
    router.register("workorders", WorkOrderViewSet, basename="workorder")
