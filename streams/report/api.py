"""The report API: /api/reports/ (list, detail with rows, queue a report) and /api/reports/<id>/csv/.

Queueing needs `streams.add_correlationreport`; reads the model's view
permission. Registered by `register(router)` from streams/urls.py.
"""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from console.publishing import AUTHENTICATION, INVALID
from streams.kafka.decoding import EPOCH_MAX, INT32_MAX

from .export import report_csv_lines
from .models import CorrelationReport, CorrelationRow
from .services import report_request


class CorrelationRowSerializer(serializers.ModelSerializer):
    class Meta:
        model = CorrelationRow
        fields = ["product", "rank", "parameter_id", "correlation", "samples", "p_value",
                  "interval_correlation", "interval_samples", "interval_p_value",
                  "raw_correlation", "raw_samples", "raw_p_value"]


class CorrelationReportSerializer(serializers.ModelSerializer):
    requested_by = serializers.StringRelatedField()
    csv_url = serializers.SerializerMethodField()

    class Meta:
        model = CorrelationReport
        fields = ["id", "status", "trigger", "requested_by", "method", "parameters", "time_from", "time_to",
                  "input_time_min", "input_time_max", "metric_count", "workorder_count", "input_digest",
                  "duration_ms", "error", "created_at", "finished_at", "csv_url"]

    def get_csv_url(self, report: CorrelationReport) -> str | None:
        request = self.context.get("request")
        path = f"/api/reports/{report.pk}/csv/"
        return request.build_absolute_uri(path) if request else path


class CorrelationReportDetailSerializer(CorrelationReportSerializer):
    rows = CorrelationRowSerializer(many=True, read_only=True)

    class Meta(CorrelationReportSerializer.Meta):
        fields = CorrelationReportSerializer.Meta.fields + ["rows"]


class ReportRequestSerializer(serializers.Serializer):
    time_from = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=EPOCH_MAX,
                                         help_text="Epoch seconds.")
    time_to = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=EPOCH_MAX,
                                       help_text="Epoch seconds.")
    tolerance_seconds = serializers.IntegerField(required=False, min_value=0, max_value=INT32_MAX)
    direction = serializers.ChoiceField(choices=["backward", "nearest"], required=False)
    min_samples = serializers.IntegerField(required=False, min_value=3, max_value=INT32_MAX)
    rank_by = serializers.ChoiceField(choices=["interval", "raw"], required=False)

    def validate(self, attrs):
        if attrs.get("time_from") is not None and attrs.get("time_to") is not None \
                and attrs["time_from"] > attrs["time_to"]:
            raise serializers.ValidationError({"time_to": "must be >= time_from"})
        return attrs


@extend_schema(tags=["reports"])
class CorrelationReportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                               viewsets.GenericViewSet):
    """Correlation reports. POST queues a new one (Celery); GET .../csv/ downloads one."""

    authentication_classes = AUTHENTICATION
    queryset = CorrelationReport.objects.select_related("requested_by")
    filterset_fields = ["status", "trigger"]

    def get_serializer_class(self):
        if self.action == "retrieve":
            return CorrelationReportDetailSerializer
        if self.action == "create":
            return ReportRequestSerializer
        return CorrelationReportSerializer

    @extend_schema(summary="Queue a report", request=ReportRequestSerializer,
                   responses={202: CorrelationReportSerializer, 400: INVALID})
    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = ReportRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        window = {"time_from": data.pop("time_from", None), "time_to": data.pop("time_to", None)}
        report = report_request(trigger=CorrelationReport.Trigger.API, by=request.user, parameters=data, **window)
        body = CorrelationReportSerializer(report, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="Download a report as CSV", responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"])
    def csv(self, request: Request, pk: str | None = None, format: str | None = None) -> StreamingHttpResponse:
        report = self.get_object()
        response = StreamingHttpResponse(report_csv_lines(report=report), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="correlation-report-{report.pk}.csv"'
        return response


def register(router) -> None:
    router.register("reports", CorrelationReportViewSet, basename="report")
