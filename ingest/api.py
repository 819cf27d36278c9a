"""DRF endpoints of file ingestion: files (list, retrieve, upload), raw readings, statistics.

Reads need the view permission of their model, an upload `ingest.upload_file`.

Called by: console/urls.py (register_routes). Uploads call
services.file_upload; reads go through selectors.
"""

from __future__ import annotations

import logging

import django_filters
from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from console.filters import IsoDateTimeFilter
from streams.kafka.producer import DeliveryError

from . import selectors, services
from .inbox import safe_file_name
from .models import IngestedFile, RawSensorReading, SensorAggregate

logger = logging.getLogger(__name__)


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
    """Files seen in the inbox. POST a multipart `file` to upload one (`ingest.upload_file`)."""

    queryset = selectors.file_list()
    action_permissions = {"create": ["ingest.upload_file"]}
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
            # The broker's error (hosts, ports) is logged, not answered.
            logger.warning("upload_announce_failed file=%s error=%s", upload.name, exc)
            return Response({"detail": "stored, but Kafka did not acknowledge the event yet; "
                                       "the inbox scan announces it later"},
                            status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response(UploadAcceptedSerializer(accepted).data, status=status.HTTP_202_ACCEPTED)


class ReadingPagination(BasePagination):
    """Keyset pages, newest first, never a COUNT(*): `next` carries ?before=<id>
    (older rows), `previous` ?after=<id> (newer rows). The raw table has no
    B-tree; selectors.reading_page reads id windows."""

    page_size = 100
    max_page_size = 1000

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        size = self._positive(request, "page_size", default=self.page_size)
        size = min(size, self.max_page_size)
        before = self._positive(request, "before")
        after = self._positive(request, "after")
        if before is not None and after is not None:
            raise ValidationError({"before": ["give before or after, not both"]})
        rows = selectors.reading_page(queryset, limit=size + 1, before=before, after=after)
        if after is None:
            self.older = len(rows) > size
            rows = rows[:size]
            self.newer = before is not None and bool(rows)
        else:
            self.newer = len(rows) > size
            rows = rows[-size:] if rows else rows
            self.older = bool(rows)
        self.rows = rows
        return rows

    @staticmethod
    def _positive(request, name: str, default: int | None = None) -> int | None:
        raw = request.query_params.get(name)
        if raw in (None, ""):
            return default
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value < 1:
            raise ValidationError({name: ["must be a positive integer"]})
        return value

    def _link(self, name: str, value: int) -> str:
        url = self.request.build_absolute_uri()
        url = remove_query_param(remove_query_param(url, "before"), "after")
        return replace_query_param(url, name, value)

    def get_paginated_response(self, data):
        return Response({
            "next": self._link("before", self.rows[-1].id) if self.older and self.rows else None,
            "previous": self._link("after", self.rows[0].id) if self.newer and self.rows else None,
            "results": data,
        })

    def get_paginated_response_schema(self, schema):
        link = {"type": "string", "nullable": True, "format": "uri"}
        return {"type": "object", "required": ["results"],
                "properties": {"next": link, "previous": link, "results": schema}}

    def get_schema_operation_parameters(self, view):
        def integer(name: str, text: str) -> dict:
            return {"name": name, "required": False, "in": "query", "description": text,
                    "schema": {"type": "integer", "minimum": 1}}

        return [integer("before", "Rows with ids below this one (the `next` link)."),
                integer("after", "Rows with ids above this one (the `previous` link)."),
                integer("page_size", f"Rows per page (default {self.page_size}, at most {self.max_page_size}).")]


class RawSensorReadingSerializer(serializers.ModelSerializer):
    """A raw row of a loaded CSV file (the OpenAPI component RawSensorReading)."""

    class Meta:
        model = RawSensorReading
        fields = ["id", "file", "ts", "recorded_at", "device", "co", "humidity", "light", "lpg", "motion", "smoke",
                  "temp"]


class RawSensorReadingFilter(django_filters.FilterSet):
    device = django_filters.CharFilter()
    since = IsoDateTimeFilter(field_name="recorded_at", lookup_expr="gte")
    until = IsoDateTimeFilter(field_name="recorded_at", lookup_expr="lt")
    file = django_filters.NumberFilter(field_name="file_id")

    class Meta:
        model = RawSensorReading
        fields = ["device", "since", "until", "file"]


class RawSensorReadingViewSet(viewsets.ReadOnlyModelViewSet):
    """Raw sensor rows, newest first; filter with ?device=&since=&until= (ISO 8601) and ?file=."""

    queryset = RawSensorReading.objects.all()
    serializer_class = RawSensorReadingSerializer
    filterset_class = RawSensorReadingFilter
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
    router.register("raw-sensor-data", RawSensorReadingViewSet, basename="raw-sensor-data")
    router.register("sensor-aggregates", SensorAggregateViewSet, basename="sensor-aggregate")
