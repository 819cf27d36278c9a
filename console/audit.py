"""The audit log of every operator action (console.models.AuditEntry), and the
two ways an action ends without its effect (failed, refused), which every
action service raises and every page, API view and command shows to the
operator.

One log for the whole console: quarantine's actions on records (release,
reprocess, discard, purge), the Kafka actions and offset resets of the
operations pages, Celery retries and revokes, releases of late orders. Each
is read in one place, Admin › Console › Audit entries; an entry about one row
(a quarantine record) names it as its `subject`, so that the row's own page
shows its trail too.

Called by: the action services of console/ops, quarantine/services and
streams/orders; their admin pages, API views and commands catch the errors.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models

from .models import AuditEntry

logger = logging.getLogger(__name__)

Outcome = AuditEntry.Outcome


class ActionError(Exception):
    """The action could not be done; the message is for the operator, and
    `detail` (e.g. a replay count and its limit) goes with it into the audit
    entry and the API's answer."""

    outcome = Outcome.FAILED

    def __init__(self, message: str, *, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail or {}


class ActionRefused(ActionError):
    """The action was not attempted: the request or the state does not allow it."""

    outcome = Outcome.REFUSED


def audit_record(*, by: Any, action: str, outcome: str, target: str = "", detail: dict[str, Any] | None = None,
                 reason: str = "", subject: models.Model | None = None) -> AuditEntry:
    """Write one entry and log the same event (`operator_action`). `by` is the
    user who acted, or None for the system (a scheduled purge); `subject`, the
    row acted on, names the target when `target` is not given."""
    entry = _entry(by=by, action=action, outcome=outcome, target=target, detail=detail, reason=reason,
                   subject=subject)
    entry.save()
    logger.info("operator_action action=%s target=%s outcome=%s actor=%s entry=%s",
                action, entry.target, outcome, entry.actor_name, entry.pk)
    return entry


def audit_records(*, by: Any, action: str, outcome: str, subjects: Sequence[models.Model], reason: str = "",
                  detail: dict[str, Any] | None = None,
                  per_subject: Mapping[Any, dict[str, Any]] | None = None) -> None:
    """One entry per subject of a set-based action, in one INSERT: `detail`
    is shared, `per_subject` (by primary key) adds each subject's own."""
    if not subjects:
        return
    per_subject = per_subject or {}
    AuditEntry.objects.bulk_create([
        _entry(by=by, action=action, outcome=outcome, reason=reason, subject=subject,
               detail={**(detail or {}), **per_subject.get(subject.pk, {})})
        for subject in subjects
    ])
    logger.info("operator_action action=%s outcome=%s actor=%s entries=%d",
                action, outcome, actor_name(by), len(subjects))


def actor_name(by: Any) -> str:
    """The name an entry keeps for `by` (kept when the user is deleted); "system" for None."""
    return getattr(by, "get_username", lambda: str(by or "system"))()[:150]


def subject_target(subject: models.Model) -> str:
    """`quarantine-record:12`: the words an entry uses for a row (its model's verbose name and key)."""
    return f"{str(subject._meta.verbose_name).replace(' ', '-')}:{subject.pk}"


def _entry(*, by: Any, action: str, outcome: str, target: str = "", detail: dict[str, Any] | None,
           reason: str, subject: models.Model | None) -> AuditEntry:
    entry = AuditEntry(
        actor=by if getattr(by, "pk", None) else None, actor_name=actor_name(by), action=action[:64],
        target=(target or (subject_target(subject) if subject is not None else ""))[:255], outcome=outcome,
        reason=reason, detail=detail or {},
    )
    if subject is not None:
        entry.content_type = ContentType.objects.get_for_model(subject)
        entry.object_id = subject.pk
    return entry
