"""The quarantine console over DRF: list/retrieve with filters, POST actions.

Reading needs `quarantine.view_quarantinerecord`; each action needs its own
permission (release / reprocess / discard). Actions call the same services as
the admin and `manage.py quarantine`.

Called by: console/urls.py (the router). Single-record actions call
services.quarantine_release/reprocess/discard; the bulk endpoints call
services.quarantine_bulk_action.
"""

from __future__ import annotations

import base64
import json

import django_filters
from django.http import FileResponse, Http404, StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import filters, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from console.audit import ActionError
from console.filters import IsoDateTimeFilter
from console.models import AuditEntry
from console.parsers import StrictJSONParser as JSONParser

from . import selectors, services
from .forms import MAX_UPLOAD_BYTES
from .models import QuarantineAuditEntry, QuarantineRecord
from .sources import FILE_RELEASE_MODES


class AuditEntrySerializer(serializers.ModelSerializer):
    """An entry of the record's trail (the audit log's entries whose subject it is)."""

    action = serializers.ChoiceField(choices=QuarantineAuditEntry.Action.choices, read_only=True)
    details = serializers.JSONField(source="detail", read_only=True)

    class Meta:
        model = AuditEntry
        fields = ["id", "at", "actor_name", "action", "outcome", "reason", "details"]


class RecordSerializer(serializers.ModelSerializer):
    origin = serializers.CharField(read_only=True)
    message_key = serializers.SerializerMethodField()
    payload = serializers.SerializerMethodField()
    payload_base64 = serializers.SerializerMethodField()

    class Meta:
        model = QuarantineRecord
        fields = [
            "id", "source", "status", "reason", "error_count", "replay_count", "origin", "created_at",
            "updated_at", "consumer", "topic", "partition", "offset", "message_key", "headers",
            "file_name", "file_path", "checksum", "task_name", "task_id",
            "resolved_at", "resolved_by", "discard_reason", "retain_until", "purged_at",
            "errors", "payload", "payload_base64",
        ]

    def get_message_key(self, record: QuarantineRecord) -> str | None:
        return bytes(record.message_key).decode("utf-8", "replace") if record.message_key is not None else None

    def get_payload(self, record: QuarantineRecord) -> str | None:
        """The payload as text (lossy for binary payloads: see payload_base64)."""
        return record.payload_text() if record.payload is not None else None

    def get_payload_base64(self, record: QuarantineRecord) -> str | None:
        return base64.b64encode(bytes(record.payload)).decode() if record.payload is not None else None


class RecordListSerializer(RecordSerializer):
    class Meta(RecordSerializer.Meta):
        fields = [f for f in RecordSerializer.Meta.fields if f not in ("errors", "payload", "payload_base64")]


class RecordDetailSerializer(RecordSerializer):
    audit_entries = AuditEntrySerializer(many=True, read_only=True)

    class Meta(RecordSerializer.Meta):
        fields = RecordSerializer.Meta.fields + ["audit_entries"]


class ReleaseSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    mode = serializers.ChoiceField(choices=FILE_RELEASE_MODES, default="valid_rows",
                                   help_text="Files: load the valid rows, or every row as-is (reason required).")
    dry_run = serializers.BooleanField(default=False)

    def validate(self, data):
        if data["mode"] == "as_is" and not data["reason"].strip():
            raise serializers.ValidationError({"reason": "A reason is required to load a file as-is."})
        return data


class ReprocessSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    payload = serializers.JSONField(required=False, help_text="Messages/tasks: the edited payload (JSON).")
    payload_text = serializers.CharField(required=False, trim_whitespace=False,
                                         help_text="Messages: the edited payload as raw text.")
    file = serializers.FileField(required=False, help_text="Files: a corrected file (multipart).")
    dry_run = serializers.BooleanField(default=False)

    def validate_file(self, upload):
        if upload.size > MAX_UPLOAD_BYTES:
            raise serializers.ValidationError(f"larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
        return upload

    def edited_payload(self) -> bytes | None:
        data = self.validated_data
        if "payload" in data:
            return json.dumps(data["payload"], separators=(",", ":"), ensure_ascii=False).encode()
        if "payload_text" in data:
            return data["payload_text"].encode()
        return None


class DiscardSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="Required.")
    dry_run = serializers.BooleanField(default=False)


class BulkSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(), required=False,
                                help_text="Record ids; without them, every record matching the query filters.")
    all_matching = serializers.BooleanField(default=False,
                                            help_text="Must be true to act on the filtered selection without ids.")
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    mode = serializers.ChoiceField(choices=FILE_RELEASE_MODES, default="valid_rows")
    dry_run = serializers.BooleanField(default=False)

    def validate(self, data):
        if not data.get("ids") and not data["all_matching"]:
            raise serializers.ValidationError({"ids": 'Give record ids, or "all_matching": true for the filtered selection.'})
        return data


class RecordFilter(django_filters.FilterSet):
    created_after = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    reason = django_filters.CharFilter(field_name="reason", lookup_expr="icontains")

    class Meta:
        model = QuarantineRecord
        fields = ["source", "status", "consumer", "topic", "task_name", "checksum"]


class QuarantinePermission(permissions.BasePermission):
    """Read: view permission. Actions: the permission named like the action."""

    def has_permission(self, request: Request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        needed = getattr(view, "required_action", None) or (
            "view" if request.method in permissions.SAFE_METHODS else None)
        return needed is not None and selectors.user_can(user, needed)


def _action_response(call) -> Response:
    try:
        result = call()
    except ActionError as exc:
        code = status.HTTP_409_CONFLICT if exc.outcome == services.Outcome.REFUSED else status.HTTP_502_BAD_GATEWAY
        return Response({"outcome": exc.outcome, "detail": exc.message, **exc.detail}, status=code)
    return Response({"record": result.record_id, "action": result.action, "outcome": result.outcome,
                     "detail": result.message, "details": result.details})


class QuarantineRecordViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = QuarantineRecord.objects.select_related("resolved_by")
    permission_classes = [QuarantinePermission]
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend, filters.SearchFilter, filters.OrderingFilter]
    filterset_class = RecordFilter
    search_fields = ["reason", "topic", "consumer", "file_name", "checksum", "task_name", "task_id"]
    ordering_fields = ["created_at", "id", "error_count", "replay_count"]
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @property
    def required_action(self) -> str | None:
        name = getattr(self, "action", None) or ""
        for verb in ("release", "reprocess", "discard"):
            if name in (verb, f"bulk_{verb}"):
                return verb
        return None

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("audit_entries")
        return queryset

    def get_serializer_class(self):
        if self.action == "list":
            return RecordListSerializer
        if self.action == "retrieve":
            return RecordDetailSerializer
        return {
            "release": ReleaseSerializer, "reprocess": ReprocessSerializer, "discard": DiscardSerializer,
            "bulk_release": BulkSerializer, "bulk_reprocess": BulkSerializer, "bulk_discard": BulkSerializer,
        }.get(self.action, RecordSerializer)

    def _valid(self, request: Request) -> serializers.Serializer:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer

    @extend_schema(request=ReleaseSerializer, responses={200: None, 409: None})
    @action(detail=True, methods=["post"])
    def release(self, request: Request, pk=None, format=None) -> Response:
        record = self.get_object()
        data = self._valid(request).validated_data
        return _action_response(lambda: services.quarantine_release(
            record=record, by=request.user, reason=data["reason"], mode=data["mode"], dry_run=data["dry_run"]))

    @extend_schema(request=ReprocessSerializer, responses={200: None, 409: None})
    @action(detail=True, methods=["post"])
    def reprocess(self, request: Request, pk=None, format=None) -> Response:
        record = self.get_object()
        serializer = self._valid(request)
        data = serializer.validated_data
        upload = data.get("file")
        return _action_response(lambda: services.quarantine_reprocess(
            record=record, by=request.user, reason=data["reason"], payload=serializer.edited_payload(),
            content=upload, dry_run=data["dry_run"]))  # streamed to disk chunk by chunk

    @extend_schema(request=DiscardSerializer, responses={200: None, 409: None})
    @action(detail=True, methods=["post"])
    def discard(self, request: Request, pk=None, format=None) -> Response:
        record = self.get_object()
        data = self._valid(request).validated_data
        return _action_response(lambda: services.quarantine_discard(
            record=record, by=request.user, reason=data["reason"], dry_run=data["dry_run"]))

    def _bulk(self, request: Request, verb: str) -> Response:
        data = self._valid(request).validated_data
        records = self.filter_queryset(self.get_queryset())
        if data.get("ids"):
            records = records.filter(pk__in=data["ids"])
        if verb == "discard" and not data["reason"].strip():
            return Response({"reason": ["Required to discard."]}, status=status.HTTP_400_BAD_REQUEST)
        result = services.quarantine_bulk_action(action=verb, records=records, by=request.user,
                                                 reason=data["reason"], mode=data["mode"], dry_run=data["dry_run"])
        return Response({
            "action": verb, "counts": result.counts(), "summary": result.summary(),
            "results": [{"record": r.record_id, "outcome": r.outcome, "detail": r.message} for r in result.results],
        })

    @extend_schema(request=BulkSerializer, responses={200: None})
    @action(detail=False, methods=["post"], url_path="bulk-release")
    def bulk_release(self, request: Request, format=None) -> Response:
        return self._bulk(request, "release")

    @extend_schema(request=BulkSerializer, responses={200: None})
    @action(detail=False, methods=["post"], url_path="bulk-reprocess")
    def bulk_reprocess(self, request: Request, format=None) -> Response:
        return self._bulk(request, "reprocess")

    @extend_schema(request=BulkSerializer, responses={200: None})
    @action(detail=False, methods=["post"], url_path="bulk-discard")
    def bulk_discard(self, request: Request, format=None) -> Response:
        return self._bulk(request, "discard")

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"])
    def original(self, request: Request, pk=None, format=None):
        record = self.get_object()
        path = selectors.record_original_path(record=record)
        if path is None:
            raise Http404("The original file is not available.")
        return FileResponse(path.open("rb"), as_attachment=True, filename=record.file_name or path.name)

    @extend_schema(responses={(200, "text/csv"): str})
    @action(detail=True, methods=["get"], url_path="rejected-rows")
    def rejected_rows(self, request: Request, pk=None, format=None):
        record = self.get_object()
        if selectors.record_original_path(record=record) is None:
            raise Http404("Rejected rows exist for available quarantined files only.")
        response = StreamingHttpResponse(selectors.record_rejected_rows_csv(record=record),
                                         content_type="text/csv; charset=utf-8")
        stem = (record.file_name or f"record-{record.pk}").rsplit(".", 1)[0]
        response["Content-Disposition"] = f'attachment; filename="{stem}-rejected-rows.csv"'
        return response


def register_routes(router) -> None:
    """Quarantine's routes on the console's router (console/urls.py)."""
    router.register("quarantine/records", QuarantineRecordViewSet, basename="quarantine-record")
