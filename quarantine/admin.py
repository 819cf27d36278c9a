"""The quarantine console in the Django admin.

Records are read-only here (nobody edits what failed); operators act on them
through the release / reprocess / discard pages and bulk actions, which call
the same services as the API and `manage.py quarantine`.

Called by: Django's admin site (autodiscovery). Single-record pages call
services.quarantine_release/reprocess/discard; bulk actions call
services.quarantine_bulk_action.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.contenttypes.admin import GenericTabularInline
from django.contrib.contenttypes.forms import BaseGenericInlineFormSet
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from console.admin_base import ReadOnlyAdmin, log_changes
from console.audit import ActionError
from console.models import AuditEntry

from . import selectors, services
from .forms import BulkActionForm, DiscardForm, ReleaseForm, ReprocessForm
from .models import QuarantineAuditEntry, QuarantineRecord

Source = QuarantineRecord.Source


def audit_details_text(details: dict[str, Any]) -> str:
    """`key: value` pairs, nested dicts flattened (`ingested_file.rows_loaded: 100`)."""
    parts: list[str] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            parts.append(f"{prefix}: {Truncator(text).chars(200)}")

    walk("", details or {})
    return "; ".join(parts)


class ReasonFilter(admin.SimpleListFilter):
    title = "reason"
    parameter_name = "reason"

    def lookups(self, request, model_admin):
        return [(reason, f"{Truncator(reason).chars(60)} ({n})") for reason, n in selectors.record_reason_counts()]

    def queryset(self, request, queryset):
        return queryset.filter(reason=self.value()) if self.value() else queryset


def action_label(action: str) -> str:
    """"Purge original" for `purge`: an action's label (the log stores the value)."""
    try:
        return QuarantineAuditEntry.Action(action).label
    except ValueError:
        return action


class AuditTrailFormSet(BaseGenericInlineFormSet):
    @classmethod
    def get_default_prefix(cls) -> str:
        return "audit_entries"  # the record's trail keeps its page id (#audit_entries-group)


class AuditEntryInline(GenericTabularInline):
    """The record's trail: the entries of the audit log whose subject it is."""

    model = AuditEntry
    formset = AuditTrailFormSet
    verbose_name_plural = "Audit trail"
    fields = ("at", "actor_name", "action_display", "outcome", "reason", "details_display")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-at", "-id")

    @admin.display(description="action")
    def action_display(self, entry: AuditEntry) -> str:
        return action_label(entry.action)

    @admin.display(description="details")
    def details_display(self, entry: AuditEntry) -> str:
        return audit_details_text(entry.detail)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        # Whoever may see the record may see its audit trail.
        return selectors.user_can(request.user, "view")


@admin.register(QuarantineRecord)
class QuarantineRecordAdmin(ReadOnlyAdmin):
    """Records come from the pipelines only; nobody edits what failed (act on it
    instead), and discard, not delete, keeps the original for the retention period."""

    change_form_template = "admin/quarantine/quarantinerecord/change_form.html"
    list_display = ("id", "source", "status", "short_reason", "origin_display", "error_count", "replay_count",
                    "created_at")
    list_display_links = ("id", "short_reason")
    list_filter = ("source", "status", ReasonFilter, "created_at", "consumer")
    search_fields = ("reason", "topic", "consumer", "file_name", "checksum", "task_name", "task_id")
    date_hierarchy = "created_at"
    list_per_page = 50
    inlines = [AuditEntryInline]
    actions = ["release_selected", "reprocess_selected", "discard_selected"]

    # ------------------------------------------------------------- display

    @admin.display(description="reason", ordering="reason")
    def short_reason(self, record: QuarantineRecord) -> str:
        return Truncator(record.reason).chars(80)

    @admin.display(description="origin")
    def origin_display(self, record: QuarantineRecord) -> str:
        return Truncator(record.origin).chars(60)

    @admin.display(description="key")
    def key_display(self, record: QuarantineRecord) -> str:
        return bytes(record.message_key).decode("utf-8", "replace") if record.message_key is not None else "—"

    @admin.display(description="headers")
    def headers_display(self, record: QuarantineRecord) -> str:
        return ", ".join(f"{k}={v}" for k, v in record.headers or []) or "—"

    def get_fieldsets(self, request, obj=None):
        common = ("source", "status", "reason", "error_count", "replay_count", "created_at")
        origin: tuple[str, ...] = ()
        if obj is not None and obj.source == Source.MESSAGE:
            origin = ("consumer", "topic", "partition", "offset", "key_display", "headers_display")
        elif obj is not None and obj.source == Source.FILE:
            origin = ("file_name", "file_path", "checksum")
        elif obj is not None:
            origin = ("task_name", "task_id")
        resolution = ("resolved_at", "resolved_by", "discard_reason", "retain_until", "purged_at")
        return [(None, {"fields": common}), ("Origin", {"fields": origin}),
                ("Resolution", {"fields": resolution, "classes": ("collapse",) if obj and obj.is_open else ()})]

    def get_readonly_fields(self, request, obj=None):
        return [f for _, opts in self.get_fieldsets(request, obj) for f in opts["fields"]]


    def has_release_permission(self, request) -> bool:
        return selectors.user_can(request.user, "release")

    def has_reprocess_permission(self, request) -> bool:
        return selectors.user_can(request.user, "reprocess")

    def has_discard_permission(self, request) -> bool:
        return selectors.user_can(request.user, "discard")

    # --------------------------------------------------------- detail page

    def change_view(self, request, object_id, form_url="", extra_context=None):
        record = self.get_object(request, object_id)
        extra_context = dict(extra_context or {})
        if record is not None:
            extra_context.update(self._detail_context(request, record))
        return super().change_view(request, object_id, form_url, extra_context)

    def _detail_context(self, request: HttpRequest, record: QuarantineRecord) -> dict[str, Any]:
        context: dict[str, Any] = {
            "record": record,
            "error_columns": selectors.error_columns(record),
            "error_rows": (record.errors or [])[:500],
            "errors_truncated": record.error_count > len(record.errors or []),
            "can_release": record.is_open and self.has_release_permission(request),
            "can_reprocess": record.is_open and self.has_reprocess_permission(request),
            "can_discard": record.is_open and self.has_discard_permission(request),
        }
        if record.source == Source.FILE:
            context["file_preview"] = selectors.record_file_preview(record=record)
            context["has_original"] = selectors.record_original_path(record=record) is not None
        elif record.purged_at is None:
            context["payload_preview"] = selectors.record_payload_preview(record=record)
        return context

    # ----------------------------------------------------------- urls/views

    def get_urls(self):
        wrap = self.admin_site.admin_view
        prefix = "quarantine_quarantinerecord"
        return [
            path("<int:object_id>/release/", wrap(self.release_view), name=f"{prefix}_release"),
            path("<int:object_id>/reprocess/", wrap(self.reprocess_view), name=f"{prefix}_reprocess"),
            path("<int:object_id>/discard/", wrap(self.discard_view), name=f"{prefix}_discard"),
            path("<int:object_id>/original/", wrap(self.original_view), name=f"{prefix}_original"),
            path("<int:object_id>/rejected-rows.csv", wrap(self.rejected_rows_view), name=f"{prefix}_rejected"),
        ] + super().get_urls()

    def _record_for(self, request: HttpRequest, object_id: int, permission: str) -> QuarantineRecord:
        if not selectors.user_can(request.user, permission):
            raise PermissionDenied(f"You do not have permission to {permission} quarantine records.")
        return get_object_or_404(QuarantineRecord, pk=object_id)

    def _change_url(self, record: QuarantineRecord) -> str:
        return reverse("admin:quarantine_quarantinerecord_change", args=[record.pk])

    def _action_page(self, request, record, *, action: str, form, title: str, intro: str) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "record": record,
            "form": form,
            "action": action,
            "intro": intro,
            "payload_preview": (selectors.record_payload_preview(record=record)
                                if record.source != Source.FILE and record.purged_at is None else None),
            "file_preview": (selectors.record_file_preview(record=record)
                             if record.source == Source.FILE else None),
            "error_columns": selectors.error_columns(record),
            "error_rows": (record.errors or [])[:100],
            "change_url": self._change_url(record),
        }
        return TemplateResponse(request, "admin/quarantine/action_form.html", context)

    def _finish(self, request, record, call) -> HttpResponseRedirect | None:
        try:
            result = call()
        except ActionError as exc:
            self.message_user(request, f"{exc.outcome.capitalize()}: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(self._change_url(record))
        self.log_change(request, record, f"{result.action}: {result.message}")
        self.message_user(request, result.message[:1].upper() + result.message[1:] + ".", messages.SUCCESS)
        return HttpResponseRedirect(self._change_url(record))

    def release_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        record = self._record_for(request, object_id, "release")
        form = ReleaseForm(request.POST or None, record=record)
        if request.method == "POST" and form.is_valid():
            return self._finish(request, record, lambda: services.quarantine_release(
                record=record, by=request.user, reason=form.cleaned_data["reason"],
                mode=form.cleaned_data.get("mode") or "valid_rows"))
        intro = {
            Source.MESSAGE: f"Re-drive the original message to {record.topic} (replay {record.replay_count + 1}).",
            Source.TASK: f"Queue {record.task_name} again with its original arguments.",
            Source.FILE: f"Load {record.file_name} into the database.",
        }[record.source]
        return self._action_page(request, record, action="release", form=form,
                                 title=f"Release record #{record.pk}", intro=intro)

    def reprocess_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        record = self._record_for(request, object_id, "reprocess")
        form = ReprocessForm(request.POST or None, request.FILES or None, record=record)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            return self._finish(request, record, lambda: services.quarantine_reprocess(
                record=record, by=request.user, reason=data["reason"],
                payload=data.get("payload"), content=data.get("content")))
        intro = {
            Source.MESSAGE: f"Edit the message and re-drive it to {record.topic}; it runs through its consumer again.",
            Source.TASK: "Edit the task's arguments and queue it again.",
            Source.FILE: "Upload a corrected file (or none, to run the original again) through the ingestion pipeline.",
        }[record.source]
        return self._action_page(request, record, action="reprocess", form=form,
                                 title=f"Reprocess record #{record.pk}", intro=intro)

    def discard_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        record = self._record_for(request, object_id, "discard")
        form = DiscardForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            return self._finish(request, record, lambda: services.quarantine_discard(
                record=record, by=request.user, reason=form.cleaned_data["reason"]))
        from django.conf import settings

        return self._action_page(
            request, record, action="discard", form=form, title=f"Discard record #{record.pk}?",
            intro=(f"The record is closed without loading it. Its original is kept for "
                   f"{settings.QUARANTINE_RETENTION_DAYS} days, then purged."))

    def original_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        record = self._record_for(request, object_id, "view")
        file_path = selectors.record_original_path(record=record)
        if file_path is None:
            raise Http404("The original file is not available (purged, moved or not a file record).")
        return FileResponse(file_path.open("rb"), as_attachment=True, filename=record.file_name or file_path.name)

    def rejected_rows_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        record = self._record_for(request, object_id, "view")
        if record.source != Source.FILE or selectors.record_original_path(record=record) is None:
            raise Http404("Rejected rows exist for available quarantined files only.")
        stem = (record.file_name or f"record-{record.pk}").rsplit(".", 1)[0]
        response = StreamingHttpResponse(selectors.record_rejected_rows_csv(record=record),
                                         content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{stem}-rejected-rows.csv"'
        return response

    # --------------------------------------------------------- bulk actions

    @admin.action(permissions=["release"], description="Release selected records…")
    def release_selected(self, request, queryset):
        return self._bulk(request, queryset, "release")

    @admin.action(permissions=["reprocess"], description="Reprocess selected records (originals)…")
    def reprocess_selected(self, request, queryset):
        return self._bulk(request, queryset, "reprocess")

    @admin.action(permissions=["discard"], description="Discard selected records…")
    def discard_selected(self, request, queryset):
        return self._bulk(request, queryset, "discard")

    def _bulk(self, request: HttpRequest, queryset, action: str) -> TemplateResponse | None:
        form = BulkActionForm(request.POST if "apply" in request.POST else None, action=action)
        if "apply" in request.POST and form.is_valid():
            reason = form.cleaned_data["reason"]
            result = services.quarantine_bulk_action(
                action=action, records=queryset, by=request.user, reason=reason,
                mode=form.cleaned_data.get("mode") or "valid_rows")
            done_ids = [r.record_id for r in result.results if r.outcome == services.Outcome.SUCCEEDED]
            if done_ids:
                log_changes(user=request.user, objects=QuarantineRecord.objects.filter(pk__in=done_ids),
                            message=f"{action} (bulk): {reason}"[:1000])
            level = messages.SUCCESS if result.succeeded == len(result.results) else messages.WARNING
            self.message_user(request, result.summary(), level)
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"{action.capitalize()} {queryset.count()} record(s)?",
            "action": action,
            "action_name": f"{action}_selected",
            "form": form,
            "count": queryset.count(),
            "open_count": queryset.filter(status=QuarantineRecord.Status.OPEN).count(),
            "sample": queryset[:20],
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/quarantine/bulk_action.html", context)


@admin.register(QuarantineAuditEntry)
class QuarantineAuditEntryAdmin(ReadOnlyAdmin):
    """The audit log's entries about records (the whole log: Admin › Console ›
    Audit entries), for whoever may view quarantine's audit entries."""

    list_display = ("at", "actor_name", "action_display", "outcome", "record_link", "short_reason")
    list_filter = ("action", "outcome", "at")
    search_fields = ("actor_name", "reason", "quarantine_record__reason")
    date_hierarchy = "at"
    fields = ("at", "actor_name", "actor", "action_display", "outcome", "record_link", "reason", "details_display")
    readonly_fields = fields

    @admin.display(description="action", ordering="action")
    def action_display(self, entry: QuarantineAuditEntry) -> str:
        return action_label(entry.action)

    @admin.display(description="record")
    def record_link(self, entry: QuarantineAuditEntry) -> str:
        url = reverse("admin:quarantine_quarantinerecord_change", args=[entry.object_id])
        return format_html('<a href="{}">#{}</a>', url, entry.object_id)

    @admin.display(description="details")
    def details_display(self, entry: QuarantineAuditEntry) -> str:
        return audit_details_text(entry.detail)

    @admin.display(description="reason")
    def short_reason(self, entry: QuarantineAuditEntry) -> str:
        return Truncator(entry.reason).chars(80)
