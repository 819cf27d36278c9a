"""Writes to quarantine. Every pipeline and every entry point (admin actions,
the API, `manage.py quarantine`, Celery) calls these, never the model directly.

Operator actions (release, reprocess, discard) share one shape: lock the
record, check that it may be acted on, do the work, then mark the record and
write an audit entry, all in one transaction. A refused or failed action
writes an audit entry too (outside the rolled-back transaction) and raises
`QuarantineActionError`, whose message is meant for the operator.

What "release" means depends on the source:

* message: the payload is re-driven to its original topic with
  `x-replay-count` incremented; the record is marked only after the broker
  acknowledged the message (`produce_and_wait`). A record whose replay count
  reached `QUARANTINE_MAX_REPLAYS` is refused, so nothing loops forever.
* task: the task is queued again with its stored args and kwargs.
* file: the registered file source (quarantine/sources.py; ingest registers
  it) loads the valid rows (or
  all rows, `mode="as_is"`, when the operator overrides a rule).
"""

from __future__ import annotations

import json
import logging
import math
import traceback as traceback_module
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from ..models import QuarantineAuditEntry, QuarantineRecord
from ..sources import FileSource, file_original, file_source

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from streams.kafka.registry import Rejection

logger = logging.getLogger(__name__)

MAX_ERRORS_KEPT = 1000
REPLAY_COUNT_HEADER = "x-replay-count"
RECORD_HEADER = "x-quarantine-record"
FILE_RELEASE_MODES = ("valid_rows", "as_is")
# Re-driven messages are published (and acknowledged) in batches of this size.
REDRIVE_BATCH_SIZE = 500

Action = QuarantineAuditEntry.Action
Outcome = QuarantineAuditEntry.Outcome
Source = QuarantineRecord.Source
Status = QuarantineRecord.Status

_STATUS_AFTER = {
    Action.RELEASE: Status.RELEASED,
    Action.REPROCESS: Status.REPROCESSED,
    Action.DISCARD: Status.DISCARDED,
}


# ------------------------------------------------------------------ recording


def safe_text(value: str) -> str:
    """Text PostgreSQL stores as it is: NUL and lone surrogates written as escapes."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def safe_json(value: Any) -> Any:
    """A JSON value whose strings and keys are all `safe_text` (jsonb refuses \\u0000)."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        return {safe_text(str(k)): safe_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [safe_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def quarantine_dead_letters(*, consumer: str, rejections: Sequence["Rejection"]) -> int:
    """Record rejected stream messages; a replayed message is recorded once.

    Whatever a message carried (NUL, invalid UTF-8 in headers) is stored safely:
    the payload as bytes, every text escaped, so recording never fails."""
    records = [
        QuarantineRecord(
            source=QuarantineRecord.Source.MESSAGE,
            reason=safe_text(r.reason)[:500],
            errors=safe_json(r.errors[:MAX_ERRORS_KEPT]),
            error_count=max(len(r.errors), 1),
            consumer=consumer,
            topic=safe_text(r.envelope.topic),
            partition=r.envelope.partition,
            offset=r.envelope.offset,
            message_key=r.envelope.key,
            headers=[[safe_text(k), safe_text((v or b"").decode("utf-8", "replace"))]
                     for k, v in r.envelope.headers],
            payload=r.envelope.raw,
            replay_count=_replay_count(r.envelope.header("x-replay-count")),
        )
        for r in rejections
    ]
    created = QuarantineRecord.objects.bulk_create(records, ignore_conflicts=True)
    return len(created)


def _replay_count(raw: bytes | str | int | None) -> int:
    try:
        return max(int(raw or 0), 0)
    except (TypeError, ValueError):
        return 0


def quarantine_file(
    *,
    file_path: str,
    file_name: str,
    checksum: str,
    reason: str,
    errors: Sequence[dict],
    error_count: int,
) -> QuarantineRecord:
    """Record a quarantined file. `file_path` is where the file now lies
    (inside the quarantine directory); `errors` are structured (line, column,
    value, rule, message) and capped by the caller; `error_count` is the total."""
    return QuarantineRecord.objects.create(
        source=QuarantineRecord.Source.FILE,
        reason=reason[:500],
        errors=list(errors)[:MAX_ERRORS_KEPT],
        error_count=error_count,
        file_path=file_path,
        file_name=file_name,
        checksum=checksum,
    )


def quarantine_task_failure(
    *,
    task_name: str,
    task_id: str,
    args: Sequence[Any] | None,
    kwargs: dict[str, Any] | None,
    exception: BaseException,
    traceback_text: str = "",
    queue: str | None = None,
    replay_count: int = 0,
) -> QuarantineRecord | None:
    """Record a Celery task that failed for good (after its retries).
    A failure reported twice for the same task id is recorded once; returns
    None in that case."""
    payload = {"args": list(args or []), "kwargs": dict(kwargs or {}), "queue": queue}
    if not traceback_text and exception.__traceback__ is not None:
        traceback_text = "".join(traceback_module.format_exception(exception))
    reason = f"{type(exception).__name__}: {exception}"
    record, created = QuarantineRecord.objects.get_or_create(
        source=Source.TASK,
        task_id=task_id[:64],
        defaults={
            "reason": reason[:500],
            "errors": [{
                "rule": "exception",
                "type": type(exception).__name__,
                "message": str(exception)[:2000],
                "traceback": traceback_text[-8000:],
            }],
            "error_count": 1,
            "task_name": task_name[:200],
            "payload": json.dumps(payload, default=repr).encode(),
            "replay_count": _replay_count(replay_count),
        },
    )
    return record if created else None


# ------------------------------------------------------------ operator actions


class QuarantineActionError(Exception):
    """An action could not be done; the message is for the operator."""

    outcome = Outcome.FAILED

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class QuarantineActionRefused(QuarantineActionError):
    """The action is not allowed on this record (status, replay limit, missing reason)."""

    outcome = Outcome.REFUSED


@dataclass
class ActionResult:
    record_id: int
    action: str
    outcome: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class BulkResult:
    action: str
    results: list[ActionResult] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return dict(Counter(r.outcome for r in self.results))

    @property
    def succeeded(self) -> int:
        return self.counts().get(Outcome.SUCCEEDED, 0)

    def summary(self) -> str:
        if not self.results:
            return f"{self.action}: no records selected"
        parts = [f"{n} {Outcome(outcome).label.lower()}" for outcome, n in sorted(self.counts().items())]
        text = f"{self.action}: " + ", ".join(parts)
        problems = [r for r in self.results if r.outcome in (Outcome.REFUSED, Outcome.FAILED)]
        if problems:
            text += " (" + "; ".join(f"#{r.record_id}: {r.message}" for r in problems[:5])
            text += ", …)" if len(problems) > 5 else ")"
        return text


def _actor_name(by: "AbstractBaseUser | None") -> str:
    return by.get_username() if by is not None else "system"


def _audit(
    record: QuarantineRecord,
    *,
    by: "AbstractBaseUser | None",
    action: str,
    reason: str,
    outcome: str,
    details: dict[str, Any],
) -> QuarantineAuditEntry:
    return QuarantineAuditEntry.objects.create(
        record_id=record.pk,
        actor=by if by is not None and by.pk else None,
        actor_name=_actor_name(by),
        action=action,
        reason=reason,
        outcome=outcome,
        details=details,
    )


def _check_can_act(record: QuarantineRecord, *, action: str, reason: str, mode: str | None = None) -> None:
    if record.status != Status.OPEN:
        raise QuarantineActionRefused(
            f"record #{record.pk} is {record.get_status_display().lower()}, only open records can be "
            f"{'discarded' if action == Action.DISCARD else action + 'd'}"
        )
    if action == Action.DISCARD:
        if not reason.strip():
            raise QuarantineActionRefused("a reason is required to discard a record")
        return
    if record.purged_at is not None:
        raise QuarantineActionRefused(f"record #{record.pk}'s original was purged")
    if record.source in (Source.MESSAGE, Source.TASK):
        limit = settings.QUARANTINE_MAX_REPLAYS
        if record.replay_count >= limit:
            raise QuarantineActionRefused(
                f"record #{record.pk} was re-driven {record.replay_count} time(s), the limit "
                f"(QUARANTINE_MAX_REPLAYS) is {limit}: fix the cause and discard it, or raise the limit",
                details={"replay_count": record.replay_count, "max_replays": limit},
            )
    if record.source == Source.MESSAGE and not record.topic:
        raise QuarantineActionRefused(f"record #{record.pk} has no original topic to re-drive to")
    if record.source == Source.FILE and action == Action.RELEASE:
        if mode not in FILE_RELEASE_MODES:
            raise QuarantineActionRefused(f"release mode must be one of {', '.join(FILE_RELEASE_MODES)}, not {mode!r}")
        if mode == "as_is" and not reason.strip():
            raise QuarantineActionRefused("a reason is required to load a file as-is (overriding its rules)")


def _perform(
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
            _check_can_act(locked, action=action, reason=reason, mode=mode)
            if dry_run:
                return ActionResult(
                    record_id=locked.pk, action=action, outcome=Outcome.DRY_RUN,
                    message=f"would {action} record #{locked.pk} ({locked.origin})",
                )
            try:
                message, details = work(locked)
            except QuarantineActionError:
                raise
            except Exception as exc:
                logger.exception("quarantine_action_failed action=%s record=%s", action, locked.pk)
                raise QuarantineActionError(f"{action} of record #{locked.pk} failed: {type(exc).__name__}: {exc}") from exc
            _mark(locked, action=action, by=by, reason=reason)
            _audit(locked, by=by, action=action, reason=reason, outcome=Outcome.SUCCEEDED, details=details)
    except QuarantineActionError as exc:
        _audit(record, by=by, action=action, reason=reason, outcome=exc.outcome,
               details={"error": exc.message, **exc.details})
        logger.info("quarantine_action action=%s record=%s outcome=%s error=%s",
                    action, record.pk, exc.outcome, exc.message)
        raise
    record.refresh_from_db()
    logger.info("quarantine_action action=%s record=%s outcome=succeeded by=%s", action, record.pk, _actor_name(by))
    return ActionResult(record_id=record.pk, action=action, outcome=Outcome.SUCCEEDED, message=message, details=details)


def _mark(record: QuarantineRecord, *, action: str, by: "AbstractBaseUser | None", reason: str) -> None:
    now = timezone.now()
    record.status = _STATUS_AFTER[action]
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
    needs a reason). Raises QuarantineActionError when refused or failed."""

    def work(locked: QuarantineRecord) -> tuple[str, dict[str, Any]]:
        if locked.source == Source.MESSAGE:
            details = _redrive([locked])[locked.pk]
            return f"re-drove record #{locked.pk} to {locked.topic}", details
        if locked.source == Source.TASK:
            details = _requeue_task(locked, payload=None)
            return f"queued {locked.task_name} again (task {details['task_id']})", details
        source = _file_source_or_refuse()
        ingested = source.release(record=locked, by=by, reason=reason, mode=mode)
        details = {"mode": mode, "ingested_file": source.describe(ingested)}
        loaded = details["ingested_file"].get("rows_loaded")
        rows = f": {loaded:,} rows loaded" if isinstance(loaded, int) else ""
        return f"loaded {locked.file_name} ({mode.replace('_', ' ')}){rows}", details

    return _perform(action=Action.RELEASE, record=record, by=by, reason=reason, dry_run=dry_run,
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
            details = _redrive([locked], payloads={locked.pk: payload} if payload is not None else None)[locked.pk]
            return f"re-drove record #{locked.pk} to {locked.topic}" + (" (edited)" if payload is not None else ""), details
        if locked.source == Source.TASK:
            details = _requeue_task(locked, payload=payload)
            return f"queued {locked.task_name} again (task {details['task_id']})", details
        source = _file_source_or_refuse()
        ingested = source.reprocess(record=locked, by=by, content=content)
        details = {"corrected_upload": content is not None, "ingested_file": source.describe(ingested)}
        if content is not None:
            details["uploaded_bytes"] = ingested.size
        return f"ran {locked.file_name} through the pipeline again", details

    return _perform(action=Action.REPROCESS, record=record, by=by, reason=reason, dry_run=dry_run,
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

    return _perform(action=Action.DISCARD, record=record, by=by, reason=reason, dry_run=dry_run,
                    mode=None, work=work)


# --------------------------------------------------------------------- bulk


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
                    _check_can_act(record, action=Action.DISCARD, reason=reason)
                    eligible.append(record)
                except QuarantineActionRefused as exc:
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
                _audit_many(eligible, by=by, action=Action.DISCARD, reason=reason,
                            outcome=Outcome.SUCCEEDED, details=details)
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


def _audit_many(records: Sequence[QuarantineRecord], *, by, action: str, reason: str, outcome: str,
                details: dict[str, Any] | None = None, per_record: dict[int, dict[str, Any]] | None = None) -> None:
    QuarantineAuditEntry.objects.bulk_create([
        QuarantineAuditEntry(
            record_id=r.pk, actor=by if by is not None and by.pk else None, actor_name=_actor_name(by),
            action=action, reason=reason, outcome=outcome,
            details={**(details or {}), **((per_record or {}).get(r.pk, {}))},
        )
        for r in records
    ])


def _audit_refusals(refused: Sequence[tuple[QuarantineRecord, str]], *, by, action: str, reason: str) -> None:
    QuarantineAuditEntry.objects.bulk_create([
        QuarantineAuditEntry(
            record_id=r.pk, actor=by if by is not None and by.pk else None, actor_name=_actor_name(by),
            action=action, reason=reason, outcome=Outcome.REFUSED, details={"error": message},
        )
        for r, message in refused
    ])


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
        except QuarantineActionError as exc:
            result.results.append(ActionResult(record.pk, action, exc.outcome, exc.message, exc.details))
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
                    _check_can_act(record, action=action, reason=reason)
                    eligible.append(record)
                except QuarantineActionRefused as exc:
                    refused.append((record, exc.message))
            if dry_run:
                results = [ActionResult(r.pk, action, Outcome.DRY_RUN, f"would re-drive record #{r.pk} to {r.topic}")
                           for r in eligible]
            elif eligible:
                per_record = _redrive(eligible)
                now = timezone.now()
                QuarantineRecord.objects.filter(pk__in=[r.pk for r in eligible]).update(
                    status=_STATUS_AFTER[action], resolved_at=now,
                    resolved_by=by if by is not None and by.pk else None,
                    replay_count=F("replay_count") + 1, updated_at=now,
                )
                _audit_many(eligible, by=by, action=action, reason=reason, outcome=Outcome.SUCCEEDED,
                            details={"bulk": True}, per_record=per_record)
                results = [ActionResult(r.pk, action, Outcome.SUCCEEDED, f"re-drove record #{r.pk} to {r.topic}",
                                        per_record[r.pk]) for r in eligible]
    except QuarantineActionError as exc:
        # Nothing in the batch was marked: the broker did not acknowledge all of it.
        failed = [QuarantineRecord(pk=pk) for pk in ids if pk not in {r.pk for r, _ in refused}]
        _audit_many(failed, by=by, action=action, reason=reason, outcome=Outcome.FAILED,
                    details={"error": exc.message, "bulk": True})
        results = [ActionResult(r.pk, action, Outcome.FAILED, exc.message) for r in failed]
    if refused:
        _audit_refusals(refused, by=by, action=action, reason=reason)
        results += [ActionResult(r.pk, action, Outcome.REFUSED, msg) for r, msg in refused]
    return results


# ------------------------------------------------------------ re-drive / re-queue


def _redrive_headers(record: QuarantineRecord) -> list[tuple[str, bytes]]:
    """The original headers without dead-letter and replay bookkeeping, plus
    the incremented replay count (the runtime stores it if the message is
    dead-lettered again) and the record it came from."""
    skip = {REPLAY_COUNT_HEADER, RECORD_HEADER}
    headers = [
        (str(k), str(v).encode())
        for k, v in (record.headers or [])
        if str(k) not in skip and not str(k).startswith("x-dlq-")
    ]
    headers.append((REPLAY_COUNT_HEADER, str(record.replay_count + 1).encode()))
    headers.append((RECORD_HEADER, str(record.pk).encode()))
    return headers


def _redrive(records: Sequence[QuarantineRecord], payloads: dict[int, bytes] | None = None) -> dict[int, dict[str, Any]]:
    """Publish the records' payloads to their original topics and wait for the
    broker to acknowledge every one; raises QuarantineActionError otherwise."""
    from streams.kafka.producer import DeliveryError, Outbound, produce_and_wait

    payloads = payloads or {}
    messages = []
    details: dict[int, dict[str, Any]] = {}
    for record in records:
        value = payloads.get(record.pk, bytes(record.payload or b""))
        key = bytes(record.message_key) if record.message_key is not None else None
        messages.append(Outbound(topic=record.topic, value=value, key=key, headers=_redrive_headers(record)))
        details[record.pk] = {
            "topic": record.topic,
            "replay_count": record.replay_count + 1,
            "payload_edited": record.pk in payloads,
        }
        if record.pk in payloads:
            details[record.pk]["payload"] = value[:10000].decode("utf-8", "replace")
    try:
        produce_and_wait(messages, timeout=max(settings.KAFKA_PRODUCE_TIMEOUT_SECONDS, 10.0))
    except DeliveryError as exc:
        raise QuarantineActionError(f"the broker did not acknowledge the re-drive: {exc}") from exc
    except Exception as exc:  # e.g. KafkaException for an invalid topic: nothing was acknowledged
        raise QuarantineActionError(f"the re-drive could not be published: {type(exc).__name__}: {exc}") from exc
    return details


def _requeue_task(record: QuarantineRecord, *, payload: bytes | None) -> dict[str, Any]:
    """Queue the task again. Sent inside the transaction (before the record is
    marked): Redis accepting the message is the acknowledgement we wait for."""
    from console.celery import app

    try:
        stored = json.loads(bytes(payload if payload is not None else (record.payload or b"{}")))
    except (ValueError, UnicodeDecodeError) as exc:
        raise QuarantineActionRefused(f"the task payload is not JSON: {exc}") from exc
    if not isinstance(stored, dict) or not isinstance(stored.get("args", []), list) \
            or not isinstance(stored.get("kwargs", {}), dict):
        raise QuarantineActionRefused('the task payload must be {"args": [...], "kwargs": {...}}')
    task_id = str(uuid.uuid4())
    options: dict[str, Any] = {
        "task_id": task_id,
        "headers": {"x_replay_count": record.replay_count + 1, "x_quarantine_record": record.pk},
    }
    if stored.get("queue"):
        options["queue"] = stored["queue"]
    app.send_task(record.task_name, args=stored.get("args", []), kwargs=stored.get("kwargs", {}), **options)
    return {"task_id": task_id, "task_name": record.task_name, "replay_count": record.replay_count + 1,
            "payload_edited": payload is not None, "queue": stored.get("queue")}


def _file_source_or_refuse() -> FileSource:
    source = file_source()
    if source is None:
        raise QuarantineActionError("no app that ingests files is installed: a file cannot be released")
    return source


# ---------------------------------------------------------------- permissions

OPERATORS_GROUP = "operators"
OPERATOR_PERMISSIONS = (
    "view_quarantinerecord",
    "release_quarantinerecord",
    "reprocess_quarantinerecord",
    "discard_quarantinerecord",
    "view_quarantineauditentry",
)


CLEANUP_TASK = "quarantine.purge_expired"
CLEANUP_SCHEDULE_NAME = "quarantine: purge expired discarded originals"


def quarantine_defaults_ensure() -> None:
    """The `operators` group and the hourly cleanup in beat's schedule.
    Migration 0003 creates both; this (run after every migrate) recreates
    whichever is missing, leaving existing ones as the admins set them."""
    from django.contrib.auth.models import Group, Permission
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    group, created = Group.objects.get_or_create(name=OPERATORS_GROUP)
    if created:
        group.permissions.add(*Permission.objects.filter(
            content_type__app_label="quarantine", codename__in=OPERATOR_PERMISSIONS))
    if not PeriodicTask.objects.filter(task=CLEANUP_TASK).exists():
        every_hour, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.HOURS)
        PeriodicTask.objects.get_or_create(
            name=CLEANUP_SCHEDULE_NAME, defaults={"task": CLEANUP_TASK, "interval": every_hour})


# ------------------------------------------------------------------ retention


def quarantine_purge_expired(*, now: datetime | None = None, dry_run: bool = False) -> list[int]:
    """Purge the originals (payload, file) of discarded records whose
    retention date passed. The record, its errors and its audit trail stay."""
    now = now or timezone.now()
    expired = QuarantineRecord.objects.filter(
        status=Status.DISCARDED, retain_until__lte=now, purged_at__isnull=True
    ).order_by("pk")
    ids = list(expired.values_list("pk", flat=True))
    if dry_run:
        return ids
    purged: list[int] = []
    for pk in ids:
        with transaction.atomic():
            record = QuarantineRecord.objects.select_for_update().get(pk=pk)
            if record.purged_at is not None:
                continue
            removed = None
            if record.source == Source.FILE:
                removed = _remove_quarantined_file(record)
            record.payload = None
            record.purged_at = now
            record.save(update_fields=["payload", "purged_at", "updated_at"])
            _audit(record, by=None, action=Action.PURGE, reason="retention period ended",
                   outcome=Outcome.SUCCEEDED, details={"file_removed": removed, "retain_until": str(record.retain_until)})
            purged.append(pk)
    if purged:
        logger.info("quarantine_purged records=%d", len(purged))
    return purged


def _remove_quarantined_file(record: QuarantineRecord) -> str | None:
    try:
        path = file_original(record)
    except Exception:  # the owner could not locate it: nothing to remove
        logger.warning("quarantine_purge_file_missing record=%s", record.pk)
        return None
    if path is None or not path.is_file():
        return None
    path.unlink()
    return str(path)
