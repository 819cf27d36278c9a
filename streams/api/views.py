"""Views of the streams API.

The telemetry POSTs are the hot path: JSON in, the shared validation rules,
publish to Kafka, 202 once the broker acknowledged. Nothing is written to the
database on the way (the `telemetry` consumer persists the events), and a
token is looked up once per process and minute, not per request.

Every action needs its own permission (console/permissions.py): reads the
model's view permission, publishing `streams.publish_telemetry` (the rule the
fast paths share, `may_publish_telemetry`), registration
`streams.register_product`, product edits and deletes the model's change and
delete permissions, report requests `streams.add_correlationreport`.
"""

from __future__ import annotations

import logging

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from console.pagination import NewestFirstCursorPagination
from console.parsers import StrictJSONParser as JSONParser
from console.permissions import ModelPermissions
from console.throttles import AnonThrottle, TelemetryThrottle
from streams import products as product_services
from streams.kafka.producer import DeliveryError
from streams.kafka.registry import MessageRejected
from streams.kafka.topics import topic_name
from streams.models import CorrelationReport, MachineMetric, Product, WorkOrderReading
from streams.report import report_csv_lines, report_request

from . import serializers as s
from .auth import CachedTokenAuthentication, CanPublishTelemetry
from .ingest import METRICS, WORKORDERS, TelemetryKind, field_errors, telemetry_ingest, unavailable_answer

logger = logging.getLogger(__name__)

AUTHENTICATION = [CachedTokenAuthentication, SessionAuthentication]


def kafka_unavailable(exc: DeliveryError) -> Response:
    status_code, body, headers = unavailable_answer(exc)
    return Response(body, status=status_code, headers=headers)


ACCEPTED = OpenApiResponse(s.AcceptedSchema, description="Published and acknowledged by Kafka.")
INVALID = OpenApiResponse(OpenApiTypes.OBJECT, description="Field errors; nothing was published.")
UNAVAILABLE = OpenApiResponse(s.ErrorSchema, description="Kafka did not acknowledge in time.")


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
    serializer_class = s.MachineMetricSerializer
    queryset = MachineMetric.objects.all()
    filterset_fields = ["parameter_id", "time"]

    @extend_schema(
        summary="Publish machine metrics",
        description="One `{id, val, time}` object or a JSON array of them (up to TELEMETRY_BATCH_MAX_EVENTS). "
                    "202 once Kafka acknowledged; an invalid event rejects the whole request.",
        request=s.MetricEventSchema,
        responses={202: ACCEPTED, 400: INVALID, 503: UNAVAILABLE},
    )
    def create(self, request: Request, *args, **kwargs) -> Response:
        return super().create(request, *args, **kwargs)


@extend_schema(tags=["telemetry"])
class WorkOrderViewSet(TelemetryViewSet):
    kind = WORKORDERS
    serializer_class = s.WorkOrderReadingSerializer
    queryset = WorkOrderReading.objects.all()
    filterset_fields = ["product", "time"]

    @extend_schema(
        summary="Publish work-order readings",
        description="One `{time, product, production}` object or a JSON array of them "
                    "(up to TELEMETRY_BATCH_MAX_EVENTS). 202 once Kafka acknowledged.",
        request=s.WorkOrderEventSchema,
        responses={202: ACCEPTED, 400: INVALID, 503: UNAVAILABLE},
    )
    def create(self, request: Request, *args, **kwargs) -> Response:
        return super().create(request, *args, **kwargs)


@extend_schema(tags=["products"])
class ProductViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
                     mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The product catalog. Registration goes through Kafka (`register`); DELETE is a soft delete."""

    authentication_classes = AUTHENTICATION
    serializer_class = s.ProductSerializer
    action_permissions = {"register": ["streams.register_product"]}
    lookup_field = "product_id"
    lookup_value_regex = "[^/]+"
    filterset_fields = ["category", "currency"]

    def include_deleted(self) -> bool:
        return self.request.query_params.get("include_deleted", "").lower() in ("1", "true", "yes")

    def get_queryset(self):
        qs = Product.objects.all() if self.include_deleted() else Product.objects.active()
        return qs.order_by("product_id")

    def perform_update(self, serializer) -> None:
        product_services.product_update(product=serializer.instance, changes=dict(serializer.validated_data))

    def perform_destroy(self, instance: Product) -> None:
        product_services.product_soft_delete(product=instance)

    @extend_schema(
        summary="Register a product (seed 004)",
        description="Validates the registration and publishes it to cadastro-produtos; the `products` "
                    "consumer upserts the catalog and publishes the persisted product to produtos-persistidos.",
        request=s.RegistrationSchema,
        responses={202: ACCEPTED, 400: INVALID, 503: UNAVAILABLE},
    )
    @action(detail=False, methods=["post"], url_path="register", parser_classes=[JSONParser])
    def register(self, request: Request, format: str | None = None) -> Response:
        if not isinstance(request.data, dict):
            return Response({"non_field_errors": ["expected a JSON object"]}, status=status.HTTP_400_BAD_REQUEST)
        try:
            registration = product_services.validate_registration(request.data)
        except MessageRejected as exc:
            return Response(field_errors(exc.errors), status=status.HTTP_400_BAD_REQUEST)
        try:
            product_services.registration_publish(registration=registration)
        except DeliveryError as exc:
            return kafka_unavailable(exc)
        return Response({"accepted": 1, "topic": topic_name("product_registrations"),
                         "productId": registration["productId"]}, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["reports"])
class CorrelationReportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                               viewsets.GenericViewSet):
    """Correlation reports. POST queues a new one (Celery); GET .../csv/ downloads one."""

    authentication_classes = AUTHENTICATION
    queryset = CorrelationReport.objects.select_related("requested_by")
    filterset_fields = ["status", "trigger"]

    def get_serializer_class(self):
        if self.action == "retrieve":
            return s.CorrelationReportDetailSerializer
        if self.action == "create":
            return s.ReportRequestSerializer
        return s.CorrelationReportSerializer

    @extend_schema(summary="Queue a report", request=s.ReportRequestSerializer,
                   responses={202: s.CorrelationReportSerializer, 400: INVALID})
    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = s.ReportRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        window = {"time_from": data.pop("time_from", None), "time_to": data.pop("time_to", None)}
        report = report_request(trigger=CorrelationReport.Trigger.API, by=request.user, parameters=data, **window)
        body = s.CorrelationReportSerializer(report, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="Download a report as CSV", responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"])
    def csv(self, request: Request, pk: str | None = None, format: str | None = None) -> StreamingHttpResponse:
        report = self.get_object()
        response = StreamingHttpResponse(report_csv_lines(report=report), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="correlation-report-{report.pk}.csv"'
        return response
