"""Writes of the file-ingestion pipeline. The consumer, the Celery task, the
watcher, the API and the quarantine console all call these."""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from quarantine.models import QuarantineRecord
from quarantine.services import quarantine_file
from quarantine.sources import FILE_RELEASE_MODES
from streams.kafka.producer import Outbound, produce_and_wait
from streams.kafka.topics import topic_name

from ..contract import Contract, FileRejected, RowStream, read_header
from ..inbox import (
    PathRejected,
    inbox_dir,
    is_candidate,
    quarantine_dir,
    resolve_in_inbox,
    safe_file_name,
    sha256_of,
)
from ..loading import ProgressReporter, aggregates_refresh_overall, aggregates_write_file, copy_rows
from ..models import InboxEntry, IngestedFile, OverallRefreshPending, SensorReading
from ..statistics import StatisticsCollector

logger = logging.getLogger(__name__)
Status = IngestedFile.Status


# --------------------------------------------------------------------- events
def file_event(*, file_path: str, file_name: str) -> Outbound:
    """The seed's `file_events` message; keyed by path so one file stays on one partition."""
    return Outbound(topic=topic_name("file_events"), value={"file_path": file_path, "file_name": file_name},
                    key=file_path)


def _publish(events: list[Outbound]) -> None:
    if events:
        produce_and_wait(events, timeout=max(settings.KAFKA_PRODUCE_TIMEOUT_SECONDS, 10.0))


def _remember(*, rel: str, stat: os.stat_result, checksum: str) -> None:
    InboxEntry.objects.update_or_create(
        path=rel, defaults={"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "checksum": checksum}
    )


@dataclass
class ScanResult:
    published: list[str]
    pending: list[str]  # seen but not complete yet (still being written)
    skipped: int


def inbox_publish(*, paths: Iterable[pathlib.Path] | None = None, dry_run: bool = False) -> ScanResult:
    """Announce complete, new files of the inbox on `file_events`.

    A file is complete once its mtime is INGEST_SETTLE_SECONDS old; it is
    announced once per content: never again while the same path and checksum
    is known (unless it was quarantined or failed and has been dropped back)."""
    root = inbox_dir()
    candidates = list(paths) if paths is not None else _walk(root)
    settle = settings.INGEST_SETTLE_SECONDS
    now = time.time()
    events: list[Outbound] = []
    remember: list[tuple[str, os.stat_result, str]] = []
    pending: list[str] = []
    skipped = 0
    for path in candidates:
        path = pathlib.Path(path)
        if not path.is_absolute():
            path = root / path
        if not is_candidate(path):
            continue
        try:
            stat = path.stat()
            rel = path.relative_to(root).as_posix()
        except (OSError, ValueError):
            continue
        if not path.is_file():
            continue
        if now - stat.st_mtime < settle:
            pending.append(rel)
            continue
        entry = InboxEntry.objects.filter(path=rel).first()
        if entry and entry.size == stat.st_size and entry.mtime_ns == stat.st_mtime_ns:
            skipped += 1
            continue
        checksum = ""
        hashable = (stat.st_size <= settings.INGEST_MAX_FILE_BYTES
                    and path.name.lower().endswith(tuple(s.lower() for s in settings.INGEST_FILE_SUFFIXES)))
        if hashable:
            try:
                checksum = sha256_of(path)
            except OSError as exc:
                # Announced anyway: the files consumer rejects it with the reason (a quarantine record).
                logger.warning("ingest_scan_unreadable path=%s error=%s", rel, exc)
                events.append(file_event(file_path=rel, file_name=path.name))
                remember.append((rel, stat, ""))
                continue
            known = IngestedFile.objects.filter(path=rel, checksum=checksum).exclude(
                status__in=[Status.QUARANTINED, Status.FAILED]).exists()
            if known or (entry and entry.checksum == checksum):
                skipped += 1
                if not dry_run:
                    _remember(rel=rel, stat=stat, checksum=checksum)
                continue
        events.append(file_event(file_path=rel, file_name=path.name))
        remember.append((rel, stat, checksum))
    if not dry_run:
        _publish(events)
        for rel, stat, checksum in remember:
            _remember(rel=rel, stat=stat, checksum=checksum)
    return ScanResult(published=[e.value["file_path"] for e in events], pending=pending, skipped=skipped)


def files_requeue_stale(*, older_than_seconds: int | None = None) -> list[int]:
    """Queue again files stuck in progress (no progress update for a while)."""
    seconds = settings.INGEST_STALE_SECONDS if older_than_seconds is None else older_than_seconds
    cutoff = timezone.now() - timedelta(seconds=seconds)
    stale = list(IngestedFile.objects.filter(status__in=IngestedFile.IN_PROGRESS, updated_at__lt=cutoff)
                 .values_list("id", flat=True))
    with transaction.atomic():
        for file_id in stale:
            _queue(file_id)
        IngestedFile.objects.filter(id__in=stale).update(updated_at=timezone.now())
    if stale:
        logger.warning("ingest_requeued_stale files=%s", stale)
    return stale


def files_requeue_failed(*, file_ids: Iterable[int], by: Any = None) -> list[int]:
    """Run failed files again (e.g. after an outage outlasted the retries).
    Only files still in the inbox qualify; returns the ids queued."""
    queued = []
    with transaction.atomic():
        for ingested in IngestedFile.objects.select_for_update().filter(id__in=list(file_ids), status=Status.FAILED):
            try:
                resolve_in_inbox(ingested.path)
            except PathRejected:
                continue
            _reset(ingested)
            _queue(ingested.id)
            queued.append(ingested.id)
    logger.info("ingest_requeued_failed files=%s by=%s", queued, getattr(by, "username", by))
    return queued


def _walk(root: pathlib.Path) -> list[pathlib.Path]:
    found = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [pathlib.Path(directory) / f for f in files]
    return found


def file_upload(*, content: Iterable[bytes], file_name: str, by: Any = None) -> dict[str, Any]:
    """Store an upload in the inbox (under uploads/) and announce it.

    Written under a temporary name and renamed when complete, so the watcher
    never sees half a file. Returns the published event plus size and checksum."""
    name = safe_file_name(file_name)
    directory = inbox_dir() / "uploads"
    directory.mkdir(parents=True, exist_ok=True)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
    target = directory / f"{stamp}-{uuid.uuid4().hex[:6]}-{name}"
    temporary = directory / f".{target.name}.part"
    digest, size = hashlib.sha256(), 0
    with open(temporary, "wb") as fh:
        for chunk in content:
            digest.update(chunk)
            size += len(chunk)
            fh.write(chunk)
    os.replace(temporary, target)
    rel = target.relative_to(inbox_dir()).as_posix()
    _publish([file_event(file_path=rel, file_name=name)])
    _remember(rel=rel, stat=target.stat(), checksum=digest.hexdigest())
    logger.info("ingest_upload path=%s size=%d by=%s", rel, size, getattr(by, "username", by))
    return {"file_path": rel, "file_name": name, "size": size, "checksum": digest.hexdigest()}


# ------------------------------------------------------------------ consumer
def _queue(file_id: int) -> None:
    from ..tasks import process_file

    transaction.on_commit(lambda: process_file.delay(file_id))


def file_register(*, file_path: str, file_name: str | None) -> IngestedFile:
    """Register an announced file (raises PathRejected for paths that must not
    be followed) and queue its processing once the transaction commits."""
    resolved = resolve_in_inbox(file_path)
    rel = pathlib.PurePosixPath(file_path.replace("\\", "/")).as_posix()
    checksum = sha256_of(resolved)
    size = resolved.stat().st_size
    name = safe_file_name(file_name or resolved.name) if file_name else resolved.name
    existing = IngestedFile.objects.filter(path=rel, checksum=checksum).first()
    if existing is not None:
        if existing.status in (Status.QUARANTINED, Status.FAILED):
            # Dropped back into the inbox: run it through again.
            _reset(existing, size=size)
            _queue(existing.id)
        elif existing.status == Status.QUEUED:
            _queue(existing.id)  # the task is idempotent; a lost queue message must not strand the file
        return existing
    original = (IngestedFile.objects.filter(checksum=checksum, status__in=[Status.LOADED, *IngestedFile.IN_PROGRESS])
                .order_by("id").first())
    ingested, created = IngestedFile.objects.get_or_create(
        path=rel, checksum=checksum,
        defaults={
            "name": name[:255], "size": size,
            "status": Status.DUPLICATE if original else Status.QUEUED,
            "duplicate_of": original,
            "reason": f"same content (sha256) as file #{original.id} {original.name}" if original else "",
        },
    )
    if created and ingested.status == Status.QUEUED:
        _queue(ingested.id)
    logger.info("ingest_registered file=%s path=%s status=%s", ingested.id, rel, ingested.status)
    return ingested


def _reset(ingested: IngestedFile, *, size: int | None = None) -> None:
    ingested.status = Status.QUEUED
    ingested.rows_total = ingested.rows_valid = ingested.rows_rejected = ingested.rows_loaded = 0
    ingested.bytes_done = 0
    ingested.error_count = 0
    ingested.errors = []
    ingested.reason = ""
    ingested.release_mode = ""
    ingested.started_at = ingested.finished_at = None
    ingested.load_seconds = None
    ingested.timings = {}
    if size is not None:
        ingested.size = size
    ingested.save()


# ---------------------------------------------------------------------- task
def _quarantine_target(ingested: IngestedFile) -> pathlib.Path:
    return quarantine_dir() / f"{ingested.id}-{ingested.checksum[:8]}-{safe_file_name(ingested.name)}"


def file_locate(ingested: IngestedFile) -> pathlib.Path | None:
    """The file in the inbox, or already in quarantine (a crash after the move)."""
    try:
        return resolve_in_inbox(ingested.path)
    except PathRejected:
        pass
    target = _quarantine_target(ingested)
    return target if target.is_file() else None


def file_quarantine_unprocessable(*, file_id: int, source: pathlib.Path | None, reason: str,
                                  rule: str) -> IngestedFile:
    """Quarantine a file the worker cannot get through (it crashed or hung on it), with the reason."""
    errors = [{"line": None, "column": None, "value": "", "rule": rule, "message": reason}]
    with transaction.atomic():
        ingested = IngestedFile.objects.select_for_update().get(id=file_id)
        if ingested.status not in IngestedFile.IN_PROGRESS:
            return ingested
        if source is None:
            IngestedFile.objects.filter(id=file_id).update(
                status=Status.FAILED, reason=reason[:500], errors=errors, error_count=1,
                finished_at=timezone.now(), updated_at=timezone.now())
            return IngestedFile.objects.get(id=file_id)
        return _quarantine(ingested, source, reason=reason, errors=errors, error_count=1, counts={},
                           started=time.monotonic())


def file_mark_failed(*, file_id: int, reason: str, errors: list[dict] | None = None) -> None:
    """Record a failure, unless the file got somewhere final meanwhile (another run)."""
    IngestedFile.objects.filter(id=file_id, status__in=[*IngestedFile.IN_PROGRESS, Status.FAILED]).update(
        status=Status.FAILED, reason=reason[:500], errors=errors or [{"rule": "failed", "message": reason[:2000]}],
        error_count=max(len(errors or []), 1), finished_at=timezone.now(), updated_at=timezone.now(),
    )


def file_process(*, file_id: int, task_id: str = "", count_attempt: bool = True) -> IngestedFile:
    """Validate and load one registered file (the Celery task's body).

    Idempotent: a finished file is left alone, and the load is one
    transaction, so a crash mid-load leaves nothing behind to duplicate.
    A file whose runs keep dying (`count_attempt` runs, i.e. not a retry after a
    transient error) is quarantined after INGEST_MAX_ATTEMPTS."""
    with transaction.atomic():
        ingested = IngestedFile.objects.select_for_update().get(id=file_id)
        if ingested.status not in IngestedFile.IN_PROGRESS:
            return ingested
        original = (IngestedFile.objects.filter(checksum=ingested.checksum, status=Status.LOADED)
                    .exclude(id=ingested.id).order_by("id").first())
        if original is not None:
            ingested.status = Status.DUPLICATE
            ingested.duplicate_of = original
            ingested.reason = f"same content (sha256) as file #{original.id} {original.name}"
            ingested.save()
            return ingested
        crashed = ingested.status in (Status.VALIDATING, Status.LOADING)  # a run started and never finished
        if count_attempt and crashed and ingested.attempts >= settings.INGEST_MAX_ATTEMPTS:
            give_up = True
        else:
            give_up = False
            ingested.status = Status.VALIDATING
            if count_attempt:
                ingested.attempts += 1
            ingested.task_id = task_id[:64]
            ingested.started_at = timezone.now()
            ingested.save()
    source = file_locate(ingested)
    if give_up:
        return file_quarantine_unprocessable(
            file_id=file_id, source=source,
            reason=(f"processing started {ingested.attempts} times and never finished (the worker crashed, "
                    f"was killed or hung on this file); the limit is INGEST_MAX_ATTEMPTS="
                    f"{settings.INGEST_MAX_ATTEMPTS}"),
            rule="attempts",
        )
    if source is None:
        file_mark_failed(file_id=file_id, reason=f"{ingested.path!r} is no longer in the inbox")
        return IngestedFile.objects.get(id=file_id)
    if source.stat().st_size != ingested.size and source.parent != quarantine_dir():
        file_mark_failed(file_id=file_id, reason=(
            f"{ingested.path!r} changed after it was announced ({ingested.size:,} -> {source.stat().st_size:,} "
            "bytes); the new content will be announced again"))
        return IngestedFile.objects.get(id=file_id)
    for attempt in range(2):
        try:
            return _load(
                ingested, source,
                strict=True,
                partial=settings.INGEST_PARTIAL_ACCEPTANCE,
                max_rejected_share=settings.INGEST_MAX_REJECTED_SHARE,
            )
        except FileNotFoundError:
            # Moved to quarantine by a concurrent run (a redelivered task) between lookup and open.
            current = IngestedFile.objects.get(id=file_id)
            source = file_locate(current)
            if current.status not in IngestedFile.IN_PROGRESS or source is None or attempt:
                if current.status in IngestedFile.IN_PROGRESS:
                    file_mark_failed(file_id=file_id, reason=f"{ingested.path!r} disappeared while loading")
                return IngestedFile.objects.get(id=file_id)
    raise AssertionError("unreachable")


def _load(
    ingested: IngestedFile,
    source: pathlib.Path,
    *,
    strict: bool,
    partial: bool,
    max_rejected_share: float,
    release_mode: str = "",
    release_note: str = "",
) -> IngestedFile:
    contract = Contract.from_settings()
    started = time.monotonic()
    releasing = bool(release_mode)
    progress = ProgressReporter(ingested.id, IngestedFile._meta.db_table)
    try:
        with open(source, "rb") as fh:
            try:
                header = read_header(fh, contract, max_line=settings.INGEST_MAX_LINE_BYTES)
            except FileRejected as exc:
                if releasing:
                    raise ValueError(f"cannot release {ingested.name}: {exc.reason}") from None
                with transaction.atomic():
                    return _quarantine(ingested, source, reason=exc.reason, errors=exc.errors,
                                       error_count=len(exc.errors), counts={}, started=started)
            # Conditional: a concurrent run (a redelivered task) may have finished meanwhile,
            # and LOADED must never be overwritten (the check under the lock below relies on it).
            IngestedFile.objects.filter(id=ingested.id, status__in=IngestedFile.IN_PROGRESS).update(
                status=Status.LOADING, updated_at=timezone.now())
            collector = StatisticsCollector(contract.metrics)
            stream = RowStream(
                fh, header=header, contract=contract, strict=strict, load_after_errors=partial,
                on_progress=progress, progress_every=settings.INGEST_PROGRESS_EVERY_ROWS, collector=collector,
                file_id=ingested.id,
            )
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(hashtext('ingest.file'), %s)", [ingested.id])
                current = IngestedFile.objects.get(id=ingested.id)
                if current.status == Status.LOADED and (not releasing or current.release_mode == release_mode):
                    return current  # another run got there first
                if releasing:
                    SensorReading.objects.filter(file_id=ingested.id).delete()
                savepoint = transaction.savepoint()
                copied = copy_rows(stream=stream)
                stats = stream.stats
                counts = {"rows_total": stats.rows_total, "rows_valid": stats.rows_valid,
                          "rows_rejected": stats.rows_rejected}
                if stats.rows_total == 0:
                    transaction.savepoint_rollback(savepoint)
                    if releasing:
                        copied = 0
                    else:
                        return _quarantine(
                            ingested, source, reason="no data rows: the file has a header only",
                            errors=[{"line": 2, "column": None, "value": "", "rule": "no_rows",
                                     "message": "no data rows after the header"}],
                            error_count=1, counts=counts, started=started)
                share = stats.rows_rejected / stats.rows_total if stats.rows_total else 0.0
                accept = releasing or stats.error_count == 0 or (
                    partial and stats.rows_valid > 0 and share <= max_rejected_share)
                if not accept:
                    transaction.savepoint_rollback(savepoint)
                    first = stats.errors[0] if stats.errors else {}
                    reason = (f"{stats.rows_rejected:,} of {stats.rows_total:,} rows invalid "
                              f"({stats.error_count:,} errors); first: line {first.get('line')}, "
                              f"column {first.get('column')}, rule {first.get('rule')}: {first.get('message')}")
                    if partial:
                        reason += f" (rejected share {share:.2%} is above {max_rejected_share:.2%})"
                    return _quarantine(ingested, source, reason=reason, errors=stats.errors,
                                       error_count=stats.error_count, counts=counts, started=started)
                transaction.savepoint_commit(savepoint)
                copy_done = time.monotonic()
                results = collector.results() if copied else []
                aggregates_write_file(file_id=ingested.id, results=results)
                aggregates_done = time.monotonic()
                # A file released or reprocessed from quarantine stays linked to its record.
                record = current.quarantine
                reason = release_note
                if stats.error_count and not releasing:
                    # Partial acceptance: the valid rows load, the rejected rows are quarantined
                    # (the original moves to quarantine; the record lists every rejected row).
                    reason = (f"partially loaded: {stats.rows_rejected:,} of {stats.rows_total:,} rows rejected "
                              f"({share:.2%} <= {max_rejected_share:.2%})")
                    target = _move_to_quarantine(ingested, source)
                    record = quarantine_file(
                        file_path=str(target), file_name=ingested.name, checksum=ingested.checksum,
                        reason=f"{ingested.name}: {reason}", errors=stats.errors, error_count=stats.error_count,
                    )
                IngestedFile.objects.filter(id=ingested.id).update(
                    status=Status.LOADED, rows_loaded=copied, bytes_done=ingested.size, errors=stats.errors,
                    error_count=stats.error_count, reason=reason[:500], quarantine=record, release_mode=release_mode,
                    finished_at=timezone.now(), load_seconds=time.monotonic() - started,
                    updated_at=timezone.now(), **counts,
                )
                devices = sorted({r.device for r in results})
                if devices:
                    _refresh_overall_on_commit(devices)
            committed = time.monotonic()
            timings = {"validate_and_copy": round(copy_done - started, 3),
                       "aggregates": round(aggregates_done - copy_done, 3),
                       "commit": round(committed - aggregates_done, 3),
                       "total": round(committed - started, 3)}
            if ingested.started_at:
                timings["queued"] = round((ingested.started_at - ingested.created_at).total_seconds(), 3)
            IngestedFile.objects.filter(id=ingested.id).update(timings=timings, load_seconds=committed - started)
    finally:
        progress.close()
    ingested.refresh_from_db()
    logger.info("ingest_loaded file=%s rows=%s rejected=%s seconds=%.2f", ingested.id, ingested.rows_loaded,
                ingested.rows_rejected, ingested.load_seconds or 0)
    return ingested


def _refresh_overall_on_commit(devices: list[str]) -> None:
    """Mark the devices for the overall refresh (in the load's transaction) and
    queue a refresh once it commits; refreshes coalesce (aggregates_refresh)."""
    from ..tasks import refresh_overall_aggregates

    OverallRefreshPending.objects.bulk_create([OverallRefreshPending(device=d) for d in devices],
                                              ignore_conflicts=True)
    transaction.on_commit(lambda: refresh_overall_aggregates.delay())


def _move_to_quarantine(ingested: IngestedFile, source: pathlib.Path) -> pathlib.Path:
    """The file's place in the quarantine directory. It is moved there once the
    caller's transaction (the quarantine record) has committed, never before: a
    rollback or a crash leaves it in the inbox, where `file_locate` and
    `quarantined_file_original` still find it."""
    target = _quarantine_target(ingested)
    if source != target:
        def move() -> None:
            try:
                shutil.move(str(source), str(target))
            except FileNotFoundError:  # a concurrent run (a redelivered task) moved it already
                pass
        transaction.on_commit(move)
    return target


def _quarantine(
    ingested: IngestedFile,
    source: pathlib.Path,
    *,
    reason: str,
    errors: list[dict],
    error_count: int,
    counts: dict[str, int],
    started: float,
) -> IngestedFile:
    """Move the file to the quarantine directory and record why (inside the caller's transaction)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('ingest.file'), %s)", [ingested.id])
    current = IngestedFile.objects.get(id=ingested.id)
    if current.status not in IngestedFile.IN_PROGRESS:
        return current  # another run (a redelivered task) finished it meanwhile
    target = _move_to_quarantine(ingested, source)
    record = quarantine_file(
        file_path=str(target), file_name=ingested.name, checksum=ingested.checksum,
        reason=f"{ingested.name}: {reason}", errors=errors, error_count=error_count,
    )
    IngestedFile.objects.filter(id=ingested.id).update(
        status=Status.QUARANTINED, reason=reason[:500], errors=errors[: settings.INGEST_MAX_ERRORS_KEPT],
        error_count=error_count, quarantine=record, rows_loaded=0, finished_at=timezone.now(),
        load_seconds=time.monotonic() - started, updated_at=timezone.now(), **counts,
    )
    ingested.refresh_from_db()
    logger.info("ingest_quarantined file=%s record=%s reason=%s", ingested.id, record.id, reason)
    return ingested


def aggregates_refresh(*, devices: list[str] | None = None) -> int:
    """Recompute the overall statistics of `devices`, or (None) of every device
    marked pending by loads since the last refresh. One refresh at a time;
    one that waited for another finds the devices marked meanwhile, and the
    refreshes queued behind it find none left and return at once. A failed
    refresh rolls back, so its devices stay marked."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            # One refresh at a time; the lock is the transaction's, released at its end.
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('ingest.aggregates_overall'))")
            if devices is None:
                cursor.execute(f"DELETE FROM {OverallRefreshPending._meta.db_table} RETURNING device")
                devices = [row[0] for row in cursor.fetchall()]
                if not devices:
                    return 0
        return aggregates_refresh_overall(devices=devices, contract=Contract.from_settings())


# ------------------------------------------------- the quarantine console's API
def _file_of(record: QuarantineRecord) -> IngestedFile:
    ingested = IngestedFile.objects.filter(quarantine=record).order_by("-id").first()
    if ingested is None:
        ingested = IngestedFile.objects.filter(checksum=record.checksum, name=record.file_name).order_by("-id").first()
    if ingested is None or record.source != QuarantineRecord.Source.FILE:
        raise ValueError(f"quarantine record #{record.pk} is not a quarantined ingest file")
    return ingested


def quarantined_file_original(*, record: QuarantineRecord) -> pathlib.Path:
    """Where the quarantined original lies now: inside the quarantine directory, or
    still in the inbox if the process died between the record's commit and the move."""
    path = pathlib.Path(record.file_path).resolve()
    if not path.is_relative_to(quarantine_dir()):
        raise ValueError(f"quarantine record #{record.pk} points outside the quarantine directory")
    if not path.is_file():
        ingested = IngestedFile.objects.filter(quarantine=record).order_by("-id").first()
        if ingested is not None:
            try:
                return resolve_in_inbox(ingested.path)
            except PathRejected:
                pass
        raise FileNotFoundError(f"the quarantined file of record #{record.pk} is gone: {path}")
    return path


def quarantined_file_rejected_rows(*, record: QuarantineRecord) -> Iterator[str]:
    """CSV text lines: the header, then the rejected rows as they were in the file.
    The text is the file's own; a caller writing a spreadsheet download should
    neutralise formula-like cells itself."""
    path = quarantined_file_original(record=record)
    contract = Contract.from_settings()
    with open(path, "rb") as fh:
        first = fh.readline(settings.INGEST_MAX_LINE_BYTES + 1)
        fh.seek(0)
        try:
            header = read_header(fh, contract, max_line=settings.INGEST_MAX_LINE_BYTES)
        except FileRejected:
            # The header itself is what was rejected: it is the only line to show.
            yield first[: settings.INGEST_MAX_LINE_BYTES].removeprefix(b"\xef\xbb\xbf").decode(
                "utf-8", "replace").rstrip("\r\n")
            return
        yield first.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace").rstrip("\r\n")
        rejected: list[str] = []
        stream = RowStream(fh, header=header, contract=contract, load_after_errors=False,
                           on_rejected=lambda _line, raw: rejected.append(raw))
        while True:
            more = stream.step()
            yield from rejected
            rejected.clear()
            if not more:
                return


def quarantined_file_release(*, record: QuarantineRecord, by: Any, reason: str, mode: str) -> IngestedFile:
    """mode "valid_rows": load the valid rows, drop the bad ones; "as_is": load
    every row whose values parse, overriding range/format rules. Synchronous;
    the load is one transaction and a rerun with the same mode is a no-op.
    Does not change record.status (the caller does, and writes the audit)."""
    if mode not in FILE_RELEASE_MODES:
        raise ValueError(f"mode must be one of {', '.join(FILE_RELEASE_MODES)}, not {mode!r}")
    ingested = _file_of(record)
    source = quarantined_file_original(record=record)
    if ingested.status == Status.LOADED and ingested.release_mode == mode:
        return ingested
    if ingested.status == Status.LOADED and mode == "valid_rows" and not ingested.release_mode:
        # Partially accepted already: exactly the valid rows are loaded.
        IngestedFile.objects.filter(id=ingested.id).update(release_mode=mode)
        ingested.refresh_from_db()
        return ingested
    who = getattr(by, "get_username", lambda: str(by))()
    return _load(ingested, source, strict=(mode == "valid_rows"), partial=True, max_rejected_share=1.0,
                 release_mode=mode, release_note=f"released ({mode}) by {who}: {reason}")


def _spool(chunks: Iterable[bytes], directory: pathlib.Path) -> tuple[pathlib.Path, str]:
    """Write `chunks` to a hidden file in `directory`, hashing them on the way: (path, sha256).
    A corrected upload is never held whole in memory."""
    digest = hashlib.sha256()
    temporary = directory / f".reprocess-{uuid.uuid4().hex}.part"
    try:
        with temporary.open("wb") as out:
            for chunk in chunks:
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary, digest.hexdigest()


def _chunks_of(content: Any) -> Iterable[bytes]:
    """bytes, an uploaded file (its chunks) or an iterable of byte chunks, as chunks."""
    if isinstance(content, (bytes, bytearray, memoryview)):
        return [bytes(content)]
    if hasattr(content, "chunks"):
        return content.chunks()
    return content


def quarantined_file_reprocess(*, record: QuarantineRecord, by: Any, content: Any = None) -> IngestedFile:
    """Run the file through the normal pipeline again (inbox -> file_events ->
    files consumer -> task). With `content` (bytes, an uploaded file or an
    iterable of chunks, written to disk as it comes), a corrected upload takes
    the original's place in the inbox (the quarantined original is kept for
    the audit); without, the original moves back."""
    ingested = _file_of(record)
    if ingested.status in IngestedFile.IN_PROGRESS:
        return ingested
    original = quarantined_file_original(record=record) if content is None else None
    root = inbox_dir()
    wanted = root / ingested.path
    wanted.parent.mkdir(parents=True, exist_ok=True)
    spooled = None
    if content is not None:
        spooled, checksum = _spool(_chunks_of(content), wanted.parent)
    else:
        checksum = ingested.checksum
    stem, suffix = os.path.splitext(wanted.name)
    target, n = wanted, 1
    # A free name that no other registration of the same content holds (it must not be merged with it).
    while (target.exists() or target.is_symlink() or IngestedFile.objects.filter(
            path=target.relative_to(root).as_posix(), checksum=checksum).exclude(id=ingested.id).exists()):
        target, n = wanted.with_name(f"{stem}-{n}{suffix}"), n + 1
    if spooled is not None:
        os.replace(spooled, target)
    else:
        shutil.move(str(original), str(target))
    rel = target.relative_to(root).as_posix()
    with transaction.atomic():
        ingested.path, ingested.checksum = rel, checksum
        ingested.duplicate_of = None
        _reset(ingested, size=target.stat().st_size)
        stat = target.stat()
        transaction.on_commit(lambda: (_publish([file_event(file_path=rel, file_name=ingested.name)]),
                                       _remember(rel=rel, stat=stat, checksum=checksum)))
    logger.info("ingest_reprocess file=%s record=%s by=%s corrected=%s", ingested.id, record.pk,
                getattr(by, "username", by), content is not None)
    return ingested


def quarantined_file_describe(ingested: IngestedFile | None) -> dict[str, Any]:
    """What a quarantine audit entry keeps about a file released or reprocessed."""
    if ingested is None:
        return {}
    return {"id": ingested.pk, "status": ingested.status, "rows_total": ingested.rows_total,
            "rows_loaded": ingested.rows_loaded, "rows_valid": ingested.rows_valid,
            "rows_rejected": ingested.rows_rejected, "error_count": ingested.error_count}
