"""Reset or skip a consumer group's offsets from its page: a dry run, then "Apply".

`POST …/consumers/<name>/offsets/plan/` shows what would move (every partition's
committed offset, watermarks, new position, and the offsets skipped or read
again) and, when the group has no member, an "Apply" button carrying the
request and the positions it was computed from. `POST …/offsets/apply/`
moves the group (streams.kafka.offset_reset.apply_reset), which is refused
if those positions changed meanwhile. Both need `console.view_operations`
and `console.reset_offsets` (console/ops/pages.py `urls()`); the form on the
consumer page is shown only to who holds them
(console/templatetags/console_offsets.py). Every apply writes an audit entry,
`offsets_reset` on `consumer:<name>`: succeeded, refused or failed, with the
old and new positions.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib import messages as admin_messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from streams.kafka.offset_reset import (
    AFTER_OFFSET, TARGETS, TIMESTAMP, InvalidReset, OffsetResetError, ResetPlan, ResetRefused, ResetRequest,
    apply_reset, parse_timestamp, plan_reset,
)
from streams.kafka.registry import ConsumerSpec, get_consumer
from streams.kafka.topics import topic_name

from ..audit import audit_record
from ..models import AuditEntry

RESET_OFFSETS = "console.reset_offsets"
ACTION = "offsets_reset"


class ResetForm(forms.Form):
    target = forms.ChoiceField(choices=list(TARGETS.items()), initial="earliest")
    topic = forms.ChoiceField(required=False, help_text="Empty: every topic of the consumer.")
    partition = forms.IntegerField(required=False, min_value=0,
                                   help_text="Empty: every partition. Needed to skip past an offset.")
    timestamp = forms.CharField(required=False, max_length=64,
                                widget=forms.TextInput(attrs={"placeholder": "2026-12-02T05:30:00 (UTC) or ms"}),
                                help_text="For a timestamp: ISO 8601, UTC unless it names a zone, or ms since the epoch.")
    offset = forms.IntegerField(required=False, min_value=0,
                                help_text="For one past an offset: the offset of the message to step over.")

    def __init__(self, *args: Any, spec: ConsumerSpec, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec = spec
        self.fields["topic"].choices = [("", "all its topics")] + [
            (topic_name(logical), f"{topic_name(logical)} ({logical})") for logical in spec.topics]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        target = data.get("target")
        # The form sends every field; only the target's own count.
        if target == TIMESTAMP:
            try:
                data["timestamp"] = parse_timestamp(data.get("timestamp") or "")
            except InvalidReset as exc:
                self.add_error("timestamp", exc.message)
        else:
            data["timestamp"] = None
        if target == AFTER_OFFSET:
            if data.get("offset") is None:
                self.add_error("offset", "Give the offset of the message to step over.")
            if data.get("partition") is None:
                self.add_error("partition", "Give the partition of the message to step over.")
        else:
            data["offset"] = None
        return data

    def reset_request(self) -> ResetRequest:
        data = self.cleaned_data
        return ResetRequest(target=data["target"], topic=data.get("topic") or None,
                            partition=data.get("partition"), timestamp=data.get("timestamp"),
                            offset=data.get("offset"))


# ------------------------------------------------------------------- the service


def reset_offsets(*, spec: ConsumerSpec, reset: ResetRequest, by: Any,
                  expected: list[list[Any]] | None) -> ResetPlan:
    """Apply the reset and audit its outcome (succeeded, refused, failed), then return the plan applied."""
    target = f"consumer:{spec.name}"
    base = {"group": spec.group_id(), "reset": reset.as_detail(), "offsets_in_db": spec.offsets_in_db}
    try:
        plan = apply_reset(spec, reset, expected=expected)
    except OffsetResetError as exc:
        outcome = AuditEntry.Outcome.REFUSED if isinstance(exc, ResetRefused) else AuditEntry.Outcome.FAILED
        audit_record(by=by, action=ACTION, target=target, outcome=outcome,
                     detail={**base, "message": exc.message, **exc.detail})
        raise
    audit_record(by=by, action=ACTION, target=target, outcome=AuditEntry.Outcome.SUCCEEDED, detail={
        **base, "partitions": [m.as_detail() for m in plan.moves],
        "skipped": plan.skipped, "replayed": plan.replayed,
    })
    return plan


def recent_resets(name: str, limit: int = 5) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=ACTION, target=f"consumer:{name}")[:limit])


# ---------------------------------------------------------------------- the views


def _spec(name: str) -> ConsumerSpec:
    try:
        return get_consumer(name)
    except KeyError as exc:
        raise Http404(f"no consumer {name!r} is registered") from exc


def offsets_plan(request: HttpRequest, name: str) -> HttpResponse:
    """The dry run: what the reset would move, and "Apply" when the group has no member."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    spec = _spec(name)
    form = ResetForm(request.POST, spec=spec)
    plan, error = None, ""
    if form.is_valid():
        try:
            plan = plan_reset(spec, form.reset_request())
        except OffsetResetError as exc:
            error = exc.message
    return TemplateResponse(request, "ops/offsets.html", {
        **admin.site.each_context(request), "title": f"Reset the offsets of {name}", "spec": spec,
        "form": form, "plan": plan, "error": error,
        "expected": json.dumps(plan.positions()) if plan else "",
        "consumer_url": reverse("ops-consumer", args=[name]),
    })


def _expected(raw: str) -> list[list[Any]] | None:
    """The dry run's positions, as its form sent them back; None if they are not that."""
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(value, list) or not all(
            isinstance(row, list) and len(row) == 4 and isinstance(row[0], str) and isinstance(row[1], int)
            and all(v is None or isinstance(v, int) for v in row[2:]) for row in value):
        return None
    return value


def offsets_apply(request: HttpRequest, name: str) -> HttpResponse:
    """Move the group as the confirmed dry run said, then back to the consumer's page with the outcome."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    spec = _spec(name)
    back = HttpResponseRedirect(reverse("ops-consumer", args=[name]))
    form = ResetForm(request.POST, spec=spec)
    expected = _expected(request.POST.get("expected", ""))
    if not form.is_valid() or expected is None:
        problems = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items()) \
            or "the dry run's positions are missing: run the dry run first"
        audit_record(by=request.user, action=ACTION, target=f"consumer:{spec.name}",
                     outcome=AuditEntry.Outcome.REFUSED,
                     detail={"group": spec.group_id(), "message": problems,
                             "form": {k: request.POST.get(k, "")[:100] for k in form.fields}})
        admin_messages.error(request, f"Offsets not reset: {problems}")
        return back
    reset = form.reset_request()
    try:
        plan = reset_offsets(spec=spec, reset=reset, by=request.user, expected=expected)
    except OffsetResetError as exc:
        admin_messages.error(request, f"Offsets not reset: {exc.message}")
        return back
    admin_messages.success(request, (
        f"Offsets of {plan.group} reset {reset.describe()}: {len(plan.moves)} partition(s), "
        f"{plan.skipped} message(s) skipped, {plan.replayed} to read again."
        + (" The positions in PostgreSQL moved with them." if plan.offsets_in_db else "")))
    return back
