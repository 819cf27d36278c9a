"""DRF endpoints of file ingestion: files (list, retrieve, upload), raw readings, statistics."""

from __future__ import annotations

import django_filters
from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from streams.kafka.producer import DeliveryError

from . import selectors, services
from .inbox import safe_file_name
from .models import IngestedFile, SensorAggregate, SensorReading


class IngestedFileSerializer(serializers.ModelSerializer):
    progress = serializers.CharField(read_only=True)
    percent_done = serializers.IntegerField(read_only=True)

    class Meta:
        model = IngestedFile
        fields = ["id", "path", "name", "checksum", "size", "status", "progress", "percent_done", "rows_total",
                  "rows_valid", "rows_rejected", "rows_loaded", "reason", "error_count", "errors", "duplicate_of",
                  "quarantine", "release_mode", "attempts", "created_at", "started_at", "finished_at",
                  "load_seconds", "timings"]


class IngestedFileListSerializer(IngestedFileSerializer):
    class Meta(IngestedFileSerializer.Meta):
        fields = [f for f in IngestedFileSerializer.Meta.fields if f != "errors"]


class FileUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A sensor CSV (see the contract in docs/ingest.md).")

    def validate_file(self, upload):
        suffixes = tuple(s.lower() for s in settings.INGEST_FILE_SUFFIXES)
        if not safe_file_name(upload.name).lower().endswith(suffixes):
            raise serializers.ValidationError(f"only {', '.join(suffixes)} files are accepted")
        if upload.size > settings.INGEST_MAX_FILE_BYTES:
            raise serializers.ValidationError(
                f"the file has {upload.size:,} bytes; the limit is {settings.INGEST_MAX_FILE_BYTES:,}")
        return upload


class UploadAcceptedSerializer(serializers.Serializer):
    file_path = serializers.CharField()
    file_name = serializers.CharField()
    size = serializers.IntegerField()
    checksum = serializers.CharField()


class IngestedFileFilter(django_filters.FilterSet):
    class Meta:
        model = IngestedFile
        fields = {"status": ["exact"], "name": ["exact", "icontains"], "checksum": ["exact"], "path": ["exact"]}


class IngestedFileViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                          viewsets.GenericViewSet):
    """Files seen in the inbox. POST a multipart `file` to upload one (authenticated)."""

    queryset = selectors.file_list()
    filterset_class = IngestedFileFilter

    parser_classes = [MultiPartParser, FormParser]

    def get_serializer_class(self):
        if self.action == "create":
            return FileUploadSerializer
        return IngestedFileListSerializer if self.action == "list" else IngestedFileSerializer

    @extend_schema(request={"multipart/form-data": FileUploadSerializer},
                   responses={202: UploadAcceptedSerializer})
    def create(self, request, *args, **kwargs):
        serializer = FileUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        try:
            accepted = services.file_upload(content=upload.chunks(), file_name=upload.name, by=request.user)
        except DeliveryError as exc:
            # The file is in the inbox; the periodic scan announces it once Kafka is back.
            return Response({"detail": f"stored, but Kafka did not acknowledge the event yet: {exc}"},
                            status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(UploadAcceptedSerializer(accepted).data, status=status.HTTP_202_ACCEPTED)


class ReadingPagination(CursorPagination):
    """Cursor pages: no COUNT(*) over the raw table, however big it grows."""

    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class SensorReadingSerializer(serializers.ModelSerializer):
    class Meta:
        model = SensorReading
        fields = ["id", "file", "ts", "recorded_at", "device", "co", "humidity", "light", "lpg", "motion", "smoke",
                  "temp"]


class SensorReadingFilter(django_filters.FilterSet):
    device = django_filters.CharFilter()
    since = django_filters.IsoDateTimeFilter(field_name="recorded_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="recorded_at", lookup_expr="lt")
    file = django_filters.NumberFilter(field_name="file_id")

    class Meta:
        model = SensorReading
        fields = ["device", "since", "until", "file"]


class SensorReadingViewSet(viewsets.ReadOnlyModelViewSet):
    """Raw sensor rows, newest first; filter with ?device=&since=&until= (ISO 8601) and ?file=."""

    queryset = SensorReading.objects.all()
    serializer_class = SensorReadingSerializer
    filterset_class = SensorReadingFilter
    pagination_class = ReadingPagination


class SensorAggregateSerializer(serializers.ModelSerializer):
    scope = serializers.SerializerMethodField()

    class Meta:
        model = SensorAggregate
        fields = ["id", "scope", "file", "device", "metric", "count", "min", "max", "mean", "std", "median",
                  "updated_at"]

    def get_scope(self, obj) -> str:
        return "file" if obj.file_id else "overall"


class SensorAggregateFilter(django_filters.FilterSet):
    overall = django_filters.BooleanFilter(field_name="file", lookup_expr="isnull",
                                           help_text="true: statistics over all files; false: per file.")

    class Meta:
        model = SensorAggregate
        fields = ["device", "metric", "file", "overall"]


class SensorAggregateViewSet(viewsets.ReadOnlyModelViewSet):
    """min / max / mean / std / median / count per (device, metric), per file and overall."""

    queryset = selectors.aggregate_list()
    serializer_class = SensorAggregateSerializer
    filterset_class = SensorAggregateFilter


def register_routes(router) -> None:
    router.register("files", IngestedFileViewSet, basename="ingested-file")
    router.register("raw-sensor-data", SensorReadingViewSet, basename="raw-sensor-data")
    router.register("sensor-aggregates", SensorAggregateViewSet, basename="sensor-aggregate")
