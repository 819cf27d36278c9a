"""Operator actions on one record: release, reprocess, discard.

They share one shape: lock the record, check that it may be acted on, do the
work, then mark the record and write an audit entry, all in one transaction.
A refused or failed action writes an audit entry too (outside the rolled-back
transaction) and raises the console's `ActionError` (`ActionRefused` when
the action was not attempted), whose message is meant for the operator. The
entries go to the console's one audit log (console/audit.py), the record as
their subject.

What "release" means depends on the source:

* message: the payload is re-driven to its original topic with its replay
  count incremented (redrive.py); the record is marked only after the broker
  acknowledged the message. A record whose replay count reached
  `QUARANTINE_MAX_REPLAYS` is refused, so nothing loops forever.
* task: the task is queued again with its stored args and kwargs.
* file: the registered file source (quarantine/sources.py; ingest registers
  it) loads the valid rows, or all rows (`mode="as_is"`) when the operator
  overrides a rule.

Called by: the admin's action pages, the API's record actions, bulk.py (for
what is not re-driven in batches), `manage.py quarantine reprocess` with edits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from console.audit import ActionError, ActionRefused, Outcome, actor_name, audit_record
from streams.kafka.client import describe

from ..models import QuarantineAuditEntry, QuarantineRecord
from ..sources import FILE_RELEASE_MODES, FileSource, file_source
from .redrive import redrive, requeue_task
from .results import ActionResult

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

logger = logging.getLogger(__name__)

Action = QuarantineAuditEntry.Action
Source = QuarantineRecord.Source
Status = QuarantineRecord.Status

STATUS_AFTER = {
    Action.RELEASE: Status.RELEASED,
    Action.REPROCESS: Status.REPROCESSED,
    Action.DISCARD: Status.DISCARDED,
}


def check_can_act(record: QuarantineRecord, *, action: str, reason: str, mode: str | None = None) -> None:
    """Raise ActionRefused when `action` may not be done on the (locked) record."""
    if record.status != Status.OPEN:
        raise ActionRefused(
            f"record #{record.pk} is {record.get_status_display().lower()}, only open records can be "
            f"{'discarded' if action == Action.DISCARD else action + 'd'}"
        )
    if action == Action.DISCARD:
        if not reason.strip():
            raise ActionRefused("a reason is required to discard a record")
        return
    if record.purged_at is not None:
        raise ActionRefused(f"record #{record.pk}'s original was purged")
    if record.source in (Source.MESSAGE, Source.TASK):
        limit = settings.QUARANTINE_MAX_REPLAYS
        if record.replay_count >= limit:
            raise ActionRefused(
                f"record #{record.pk} was re-driven {record.replay_count} time(s), the limit "
                f"(QUARANTINE_MAX_REPLAYS) is {limit}: fix the cause and discard it, or raise the limit",
                detail={"replay_count": record.replay_count, "max_replays": limit},
            )
    if record.source == Source.MESSAGE and not record.topic:
        raise ActionRefused(f"record #{record.pk} has no original topic to re-drive to")
    if record.source == Source.FILE and action == Action.RELEASE:
        if mode not in FILE_RELEASE_MODES:
            raise ActionRefused(f"release mode must be one of {', '.join(FILE_RELEASE_MODES)}, not {mode!r}")
        if mode == "as_is" and not reason.strip():
            raise ActionRefused("a reason is required to load a file as-is (overriding its rules)")


def perform(
    *,
    action: str,
    record: QuarantineRecord,
    by: "AbstractBaseUser | None",
    reason: str,
    dry_run: bool,
    mode: str | None,
    work: Callable[[QuarantineRecord], tuple[str, dict[str, Any]]],
) -> ActionResult:
    """Lock, check, do `work`, mark and audit; on refusal or failure audit and raise."""
    reason = (reason or "").strip()
    try:
        with transaction.atomic():
            locked = QuarantineRecord.objects.select_for_update().get(pk=record.pk)
            check_can_act(locked, action=action, reason=reason, mode=mode)
            if dry_run:
                return ActionResult(
                    record_id=locked.pk, action=action, outcome=Outcome.DRY_RUN,
                    message=f"would {action} record #{locked.pk} ({locked.origin})",
                )
            try:
                message, details = work(locked)
            except ActionError:
                raise
            except Exception as exc:
                logger.exception("quarantine_action_failed action=%s record=%s", action, locked.pk)
                raise ActionError(f"{action} of record #{locked.pk} failed: {describe(exc, limit=None)}") from exc
            mark(locked, action=action, by=by, reason=reason)
            audit_record(by=by, action=action, outcome=Outcome.SUCCEEDED, subject=locked, reason=reason,
                         detail=details)
    except ActionError as exc:
        audit_record(by=by, action=action, outcome=exc.outcome, subject=record, reason=reason,
                     detail={"error": exc.message, **exc.detail})
        logger.info("quarantine_action action=%s record=%s outcome=%s error=%s",
                    action, record.pk, exc.outcome, exc.message)
        raise
    record.refresh_from_db()
    logger.info("quarantine_action action=%s record=%s outcome=succeeded by=%s", action, record.pk, actor_name(by))
    return ActionResult(record_id=record.pk, action=action, outcome=Outcome.SUCCEEDED, message=message, details=details)


def mark(record: QuarantineRecord, *, action: str, by: "AbstractBaseUser | None", reason: str) -> None:
    now = timezone.now()
    record.status = STATUS_AFTER[action]
    record.resolved_at = now
    record.resolved_by = by if by is not None and by.pk else None
    fields = ["status", "resolved_at", "resolved_by", "updated_at"]
    if action == Action.DISCARD:
        record.discard_reason = reason
        record.retain_until = now + timedelta(days=settings.QUARANTINE_RETENTION_DAYS)
        fields += ["discard_reason", "retain_until"]
    else:
        record.replay_count += 1
        fields.append("replay_count")
    record.save(update_fields=fields)


def quarantine_release(
    *,
    record: QuarantineRecord,
    by: "AbstractBaseUser | None",
    reason: str = "",
    mode: str = "valid_rows",
    dry_run: bool = False,
) -> ActionResult:
    """Release a record: re-drive a message, re-queue a task, or load a file
    (`mode` "valid_rows" drops the bad rows, "as_is" overrides the rules and
    needs a reason). Raises ActionError (ActionRefused) when failed (refused)."""

    def work(locked: QuarantineRecord) -> tuple[str, dict[str, Any]]:
        if locked.source == Source.MESSAGE:
            details = redrive([locked])[locked.pk]
            return f"re-drove record #{locked.pk} to {locked.topic}", details
        if locked.source == Source.TASK:
            details = requeue_task(locked, payload=None)
            return f"queued {locked.task_name} again (task {details['task_id']})", details
        source = file_source_or_refuse()
        ingested = source.release(record=locked, by=by, reason=reason, mode=mode)
        details = {"mode": mode, "ingested_file": source.describe(ingested)}
        loaded = details["ingested_file"].get("rows_loaded")
        rows = f": {loaded:,} rows loaded" if isinstance(loaded, int) else ""
        return f"loaded {locked.file_name} ({mode.replace('_', ' ')}){rows}", details

    return perform(action=Action.RELEASE, record=record, by=by, reason=reason, dry_run=dry_run,
                    mode=mode if record.source == Source.FILE else None, work=work)


def quarantine_reprocess(
    *,
    record: QuarantineRecord,
    by: "AbstractBaseUser | None",
    reason: str = "",
    payload: bytes | None = None,
    content: Any = None,
    dry_run: bool = False,
) -> ActionResult:
    """Run a record through its normal pipeline again, optionally corrected:
    `payload` is an operator-edited message (or task {"args", "kwargs"}),
    `content` a corrected file (bytes, an uploaded file or byte chunks; it is
    streamed to disk). Without either, the original is used."""

    def work(locked: QuarantineRecord) -> tuple[str, dict[str, Any]]:
        if locked.source == Source.MESSAGE:
            details = redrive([locked], payloads={locked.pk: payload} if payload is not None else None)[locked.pk]
            return f"re-drove record #{locked.pk} to {locked.topic}" + (" (edited)" if payload is not None else ""), details
        if locked.source == Source.TASK:
            details = requeue_task(locked, payload=payload)
            return f"queued {locked.task_name} again (task {details['task_id']})", details
        source = file_source_or_refuse()
        ingested = source.reprocess(record=locked, by=by, content=content)
        details = {"corrected_upload": content is not None, "ingested_file": source.describe(ingested)}
        if content is not None:
            details["uploaded_bytes"] = ingested.size
        return f"ran {locked.file_name} through the pipeline again", details

    return perform(action=Action.REPROCESS, record=record, by=by, reason=reason, dry_run=dry_run,
                    mode=None, work=work)


def quarantine_discard(
    *,
    record: QuarantineRecord,
    by: "AbstractBaseUser | None",
    reason: str,
    dry_run: bool = False,
) -> ActionResult:
    """Close a record without loading it. The original is kept until
    `retain_until` (QUARANTINE_RETENTION_DAYS), then purged."""

    def work(locked: QuarantineRecord) -> tuple[str, dict[str, Any]]:
        retain_until = timezone.now() + timedelta(days=settings.QUARANTINE_RETENTION_DAYS)
        return (f"discarded record #{locked.pk}; original kept until {retain_until:%Y-%m-%d}",
                {"retention_days": settings.QUARANTINE_RETENTION_DAYS})

    return perform(action=Action.DISCARD, record=record, by=by, reason=reason, dry_run=dry_run,
                    mode=None, work=work)


def file_source_or_refuse() -> FileSource:
    source = file_source()
    if source is None:
        raise ActionError("no app that ingests files is installed: a file cannot be released")
    return source
