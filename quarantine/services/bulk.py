"""Actions on a selection of records, and the one dispatcher the admin's bulk
actions, the API's bulk endpoints and `manage.py quarantine` all call
(`quarantine_bulk_action`).

Message records are re-driven in batches of REDRIVE_BATCH_SIZE, each batch
marked only after the broker acknowledged every message in it; discards are
set-based (one UPDATE and one audit INSERT per chunk); everything else goes
one record at a time through actions.py.

Called by: quarantine/admin.py, quarantine/api.py, the `quarantine` command,
bench/quarantine_bulk.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from console.audit import ActionError, ActionRefused, Outcome, audit_records

from ..models import QuarantineAuditEntry, QuarantineRecord
from .actions import STATUS_AFTER, check_can_act, quarantine_release, quarantine_reprocess
from .redrive import redrive
from .results import ActionResult, BulkResult

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

# Re-driven messages are published (and acknowledged) in batches of this size.
REDRIVE_BATCH_SIZE = 500

Action = QuarantineAuditEntry.Action
Source = QuarantineRecord.Source
Status = QuarantineRecord.Status


BULK_ACTIONS = (Action.RELEASE, Action.REPROCESS, Action.DISCARD)


def quarantine_bulk_action(
    *,
    action: str,
    records: QuerySet[QuarantineRecord] | Iterable[QuarantineRecord],
    by: "AbstractBaseUser | None",
    reason: str = "",
    mode: str = "valid_rows",
    dry_run: bool = False,
) -> BulkResult:
    """`action` (one of BULK_ACTIONS) on a selection: the one bulk entry point of
    the admin, the API and `manage.py quarantine`, so the three behave the same.
    `mode` is release's, for files; reprocess runs the originals (an edited
    payload or file is a one-record action: actions.quarantine_reprocess)."""
    if action == Action.RELEASE:
        return quarantine_release_many(records=records, by=by, reason=reason, mode=mode, dry_run=dry_run)
    if action == Action.REPROCESS:
        return quarantine_reprocess_many(records=records, by=by, reason=reason, dry_run=dry_run)
    if action == Action.DISCARD:
        return quarantine_discard_many(records=records, by=by, reason=reason, dry_run=dry_run)
    raise ValueError(f"no bulk action {action!r}; one of {', '.join(BULK_ACTIONS)}")


def quarantine_release_many(
    *,
    records: QuerySet[QuarantineRecord] | Iterable[QuarantineRecord],
    by: "AbstractBaseUser | None",
    reason: str = "",
    mode: str = "valid_rows",
    dry_run: bool = False,
) -> BulkResult:
    """Release a selection. Messages are re-driven in batches, each marked
    released only after the broker acknowledged every message in it."""
    return _many(Action.RELEASE, records, by=by, reason=reason, dry_run=dry_run,
                 single=lambda r: quarantine_release(record=r, by=by, reason=reason, mode=mode, dry_run=dry_run))


def quarantine_reprocess_many(
    *,
    records: QuerySet[QuarantineRecord] | Iterable[QuarantineRecord],
    by: "AbstractBaseUser | None",
    reason: str = "",
    dry_run: bool = False,
) -> BulkResult:
    """Reprocess a selection with the originals (no edits)."""
    return _many(Action.REPROCESS, records, by=by, reason=reason, dry_run=dry_run,
                 single=lambda r: quarantine_reprocess(record=r, by=by, reason=reason, dry_run=dry_run))


def quarantine_discard_many(
    *,
    records: QuerySet[QuarantineRecord] | Iterable[QuarantineRecord],
    by: "AbstractBaseUser | None",
    reason: str,
    dry_run: bool = False,
) -> BulkResult:
    """Discard a selection (set-based: one UPDATE and one audit INSERT per chunk)."""
    reason = (reason or "").strip()
    result = BulkResult(action=Action.DISCARD)
    ids = _ids(records)
    for start in range(0, len(ids), REDRIVE_BATCH_SIZE):
        chunk = ids[start:start + REDRIVE_BATCH_SIZE]
        refused: list[tuple[QuarantineRecord, str]] = []
        with transaction.atomic():
            locked = list(QuarantineRecord.objects.select_for_update().filter(pk__in=chunk).order_by("pk"))
            eligible = []
            for record in locked:
                try:
                    check_can_act(record, action=Action.DISCARD, reason=reason)
                    eligible.append(record)
                except ActionRefused as exc:
                    refused.append((record, exc.message))
            if dry_run:
                result.results += [ActionResult(r.pk, Action.DISCARD, Outcome.DRY_RUN, f"would discard record #{r.pk}")
                                   for r in eligible]
            elif eligible:
                now = timezone.now()
                QuarantineRecord.objects.filter(pk__in=[r.pk for r in eligible]).update(
                    status=Status.DISCARDED, resolved_at=now, resolved_by=by if by is not None and by.pk else None,
                    discard_reason=reason, retain_until=now + timedelta(days=settings.QUARANTINE_RETENTION_DAYS),
                    updated_at=now,
                )
                details = {"retention_days": settings.QUARANTINE_RETENTION_DAYS, "bulk": True}
                audit_records(by=by, action=Action.DISCARD, outcome=Outcome.SUCCEEDED, subjects=eligible,
                              reason=reason, detail=details)
                result.results += [ActionResult(r.pk, Action.DISCARD, Outcome.SUCCEEDED, f"discarded record #{r.pk}")
                                   for r in eligible]
        if refused:
            _audit_refusals(refused, by=by, action=Action.DISCARD, reason=reason)
            result.results += [ActionResult(r.pk, Action.DISCARD, Outcome.REFUSED, msg) for r, msg in refused]
    return result


def _ids(records: QuerySet[QuarantineRecord] | Iterable[QuarantineRecord]) -> list[int]:
    if isinstance(records, QuerySet):
        return list(records.order_by("pk").values_list("pk", flat=True))
    return sorted(r.pk for r in records)


def _many(
    action: str,
    records: QuerySet[QuarantineRecord] | Iterable[QuarantineRecord],
    *,
    by: "AbstractBaseUser | None",
    reason: str,
    dry_run: bool,
    single: Callable[[QuarantineRecord], ActionResult],
) -> BulkResult:
    reason = (reason or "").strip()
    result = BulkResult(action=action)
    ids = _ids(records)
    message_ids = set(
        QuarantineRecord.objects.filter(pk__in=ids, source=Source.MESSAGE).values_list("pk", flat=True)
    )
    ordered_messages = [pk for pk in ids if pk in message_ids]
    for start in range(0, len(ordered_messages), REDRIVE_BATCH_SIZE):
        result.results += _redrive_batch(action, ordered_messages[start:start + REDRIVE_BATCH_SIZE],
                                         by=by, reason=reason, dry_run=dry_run)
    for record in QuarantineRecord.objects.filter(pk__in=[pk for pk in ids if pk not in message_ids]).order_by("pk"):
        try:
            result.results.append(single(record))
        except ActionError as exc:
            result.results.append(ActionResult(record.pk, action, exc.outcome, exc.message, exc.detail))
    return result


def _redrive_batch(action: str, ids: Sequence[int], *, by, reason: str, dry_run: bool) -> list[ActionResult]:
    """Re-drive one batch of message records with their original payloads."""
    refused: list[tuple[QuarantineRecord, str]] = []
    results: list[ActionResult] = []
    try:
        with transaction.atomic():
            locked = list(QuarantineRecord.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
            eligible = []
            for record in locked:
                try:
                    check_can_act(record, action=action, reason=reason)
                    eligible.append(record)
                except ActionRefused as exc:
                    refused.append((record, exc.message))
            if dry_run:
                results = [ActionResult(r.pk, action, Outcome.DRY_RUN, f"would re-drive record #{r.pk} to {r.topic}")
                           for r in eligible]
            elif eligible:
                per_record = redrive(eligible)
                now = timezone.now()
                QuarantineRecord.objects.filter(pk__in=[r.pk for r in eligible]).update(
                    status=STATUS_AFTER[action], resolved_at=now,
                    resolved_by=by if by is not None and by.pk else None,
                    replay_count=F("replay_count") + 1, updated_at=now,
                )
                audit_records(by=by, action=action, outcome=Outcome.SUCCEEDED, subjects=eligible, reason=reason,
                              detail={"bulk": True}, per_subject=per_record)
                results = [ActionResult(r.pk, action, Outcome.SUCCEEDED, f"re-drove record #{r.pk} to {r.topic}",
                                        per_record[r.pk]) for r in eligible]
    except ActionError as exc:
        # Nothing in the batch was marked: the broker did not acknowledge all of it.
        failed = [QuarantineRecord(pk=pk) for pk in ids if pk not in {r.pk for r, _ in refused}]
        audit_records(by=by, action=action, outcome=Outcome.FAILED, subjects=failed, reason=reason,
                      detail={"error": exc.message, "bulk": True})
        results = [ActionResult(r.pk, action, Outcome.FAILED, exc.message) for r in failed]
    if refused:
        _audit_refusals(refused, by=by, action=action, reason=reason)
        results += [ActionResult(r.pk, action, Outcome.REFUSED, msg) for r, msg in refused]
    return results


def _audit_refusals(refused: Sequence[tuple[QuarantineRecord, str]], *, by, action: str, reason: str) -> None:
    """One refused entry per record, each with its own refusal."""
    audit_records(by=by, action=action, outcome=Outcome.REFUSED, subjects=[r for r, _ in refused], reason=reason,
                  per_subject={r.pk: {"error": message} for r, message in refused})
