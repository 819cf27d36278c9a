"""The console's admin: Celery task results (in place of django-celery-results'
own admin) with Retry and Revoke, and the audit log, read-only: every
operator action in one list (quarantine's, the Kafka actions, retries and
revokes, releases of late orders).

Retry needs `console.retry_task`, revoke `console.revoke_task` (both in the
`operators` group); a user without them sees neither the buttons nor the
action, and is answered 403 if they post anyway. The services are in
console/ops/celery_ops.py, shared with the workers & queues page.
"""

from __future__ import annotations

import json

from celery import states
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django_celery_results.models import GroupResult, TaskResult

from . import celery_ops
from ..admin_base import ReadOnlyAdmin
from ..audit import ActionError
from ..models import AuditEntry

RETRY_PERMISSION = "console.retry_task"
REVOKE_PERMISSION = "console.revoke_task"
# A bulk retry sends at most this many tasks; select again for more.
RETRY_BULK_LIMIT = 100

# Groups and chords are not used by the console's tasks: their admin would be an empty page.
for _model in (TaskResult, GroupResult):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


def _pretty_json(text: str | None) -> str:
    if not text:
        return ""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return json.dumps(value, indent=2, ensure_ascii=False) if not isinstance(value, str) else value


@admin.register(TaskResult)
class TaskResultAdmin(ReadOnlyAdmin):
    deletable = True  # superusers may delete; operators and viewers have no delete permission
    list_display = ("task_id", "task_name", "status_colored", "date_done", "runtime", "worker")
    list_filter = ("status", "task_name", "date_done", "date_created")
    search_fields = ("task_id", "task_name")
    list_per_page = 50
    show_full_result_count = False  # one COUNT per page, not two, on a table that grows with traffic
    ordering = ("-date_done", "-id")
    actions = ["retry_selected"]
    change_form_template = "admin/console/taskresult/change_form.html"
    fields = ("task_id", "task_name", "periodic_task_name", "status_colored", "worker", "queue",
              "arguments", "keyword_arguments", "runtime", "date_created", "date_started", "date_done",
              "result_pretty", "traceback_pre", "audit_trail")
    readonly_fields = fields

    # ---------------------------------------------------------------- columns

    @admin.display(description="state", ordering="status")
    def status_colored(self, obj: TaskResult) -> str:
        color = {states.FAILURE: "#cf222e", states.SUCCESS: "#1a7f37", states.REVOKED: "#6e7781"}.get(
            obj.status, "#bf8700")
        return format_html('<strong style="color: {}">{}</strong>', color, obj.status)

    @admin.display(description="runtime")
    def runtime(self, obj: TaskResult) -> str:
        seconds = celery_ops.task_runtime_seconds(obj)
        return "–" if seconds is None else f"{seconds:.3f} s"

    @admin.display(description="queue")
    def queue(self, obj: TaskResult) -> str:
        return (celery_ops.task_arguments(obj) or {}).get("queue") or "–"

    @admin.display(description="args")
    def arguments(self, obj: TaskResult) -> str:
        stored = celery_ops.task_arguments(obj)
        text = json.dumps(stored["args"], ensure_ascii=False) if stored else _pretty_json(obj.task_args)
        return format_html('<pre class="ops-value">{}</pre>', text)

    @admin.display(description="kwargs")
    def keyword_arguments(self, obj: TaskResult) -> str:
        stored = celery_ops.task_arguments(obj)
        text = json.dumps(stored["kwargs"], ensure_ascii=False) if stored else _pretty_json(obj.task_kwargs)
        return format_html('<pre class="ops-value">{}</pre>', text)

    @admin.display(description="result")
    def result_pretty(self, obj: TaskResult) -> str:
        return format_html("<pre>{}</pre>", _pretty_json(obj.result))

    @admin.display(description="traceback")
    def traceback_pre(self, obj: TaskResult) -> str:
        return format_html("<pre>{}</pre>", obj.traceback or "") if obj.traceback else "–"

    @admin.display(description="operator actions")
    def audit_trail(self, obj: TaskResult) -> str:
        entries = AuditEntry.objects.filter(target=f"task:{obj.task_id}")[:20]
        if not entries:
            return "–"
        return format_html_join(
            "", "<div>{} · {} · {} · {}{}</div>",
            ((f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor_name, e.action, e.outcome,
              f" · new task {e.detail['new_task_id']}" if e.detail.get("new_task_id") else
              (f" · {e.detail['message']}" if e.detail.get("message") else "")) for e in entries))

    # ---------------------------------------------------------- permissions

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(RETRY_PERMISSION)

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(REVOKE_PERMISSION)

    # -------------------------------------------------------------- actions

    @admin.action(permissions=["retry"], description="Retry the selected failed tasks (original arguments)")
    def retry_selected(self, request: HttpRequest, queryset) -> None:
        sent, refused = [], []
        for result in queryset.filter(status=states.FAILURE).order_by("id")[:RETRY_BULK_LIMIT]:
            try:
                sent.append(celery_ops.task_retry(result=result, by=request.user))
            except ActionError as exc:
                refused.append(f"{result.task_id}: {exc.message}")
        skipped = queryset.exclude(status=states.FAILURE).count()
        if sent:
            self.message_user(request, f"Retried {len(sent)} task(s).", messages.SUCCESS)
        if refused:
            self.message_user(request, "Not retried: " + "; ".join(refused[:10]), messages.WARNING)
        if skipped:
            self.message_user(request, f"{skipped} selected task(s) had not failed and were left alone.",
                              messages.INFO)

    # ----------------------------------------------------------------- views

    def get_urls(self) -> list:
        info = self.opts.app_label, self.opts.model_name
        return [
            path("<path:object_id>/retry/", self.admin_site.admin_view(self.retry_view),
                 name="%s_%s_retry" % info),
        ] + super().get_urls()

    def retry_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: what will be sent, and a button; POST: send it."""
        if not (self.has_view_permission(request) and self.has_retry_permission(request)):
            raise PermissionDenied
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        if not object_id.isdigit():
            raise Http404("no such task result")
        result = get_object_or_404(TaskResult, pk=object_id)
        change_url = reverse("admin:django_celery_results_taskresult_change", args=[result.pk])
        if request.method == "POST":
            try:
                new_id = celery_ops.task_retry(result=result, by=request.user)
            except ActionError as exc:
                self.message_user(request, f"Not retried: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"Task {result.task_name} sent again as {new_id}.", messages.SUCCESS)
            return HttpResponseRedirect(change_url)
        return TemplateResponse(request, "admin/console/taskresult/retry_confirm.html", {
            **self.admin_site.each_context(request), "title": "Retry a failed task", "opts": self.opts,
            "original": result, "arguments": celery_ops.task_arguments(result), "change_url": change_url,
        })

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        extra_context = {**(extra_context or {}),
                         "may_retry": self.has_retry_permission(request),
                         "may_revoke": self.has_revoke_permission(request),
                         "retryable": celery_ops.RETRYABLE_STATES, "queued": celery_ops.QUEUED_STATES}
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor_name", "action", "target", "outcome")
    list_filter = ("action", "outcome", "at")
    search_fields = ("target", "actor_name", "reason")
    fields = ("at", "actor_name", "actor", "action", "target", "outcome", "reason", "detail_pretty")
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description="detail")
    def detail_pretty(self, obj: AuditEntry) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.detail, indent=2, ensure_ascii=False))
