"""Processing: one registered file validated against the contract and loaded
(one transaction: COPY of the valid rows, per-file statistics), or handed to
quarantine; a file whose runs keep dying is quarantined after
INGEST_MAX_ATTEMPTS.

Called by: the `ingest.process_file` task; quarantine_source.py (a release
loads the file again, with the operator's mode).
"""

from __future__ import annotations

import logging
import pathlib
import time

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from quarantine.services import quarantine_file

from ..contract import Contract, FileRejected, RowStream, read_header
from ..inbox import PathRejected, quarantine_dir, resolve_in_inbox
from ..loading import ProgressReporter, aggregates_write_file, copy_rows
from ..models import IngestedFile, RawSensorReading
from ..statistics import StatisticsCollector
from .aggregation import refresh_overall_on_commit
from .quarantine_handoff import move_to_quarantine, quarantine_ingested, quarantine_target

logger = logging.getLogger(__name__)
Status = IngestedFile.Status


def file_locate(ingested: IngestedFile) -> pathlib.Path | None:
    """The file in the inbox, or already in quarantine (a crash after the move)."""
    try:
        return resolve_in_inbox(ingested.path)
    except PathRejected:
        pass
    target = quarantine_target(ingested)
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
        return quarantine_ingested(ingested, source, reason=reason, errors=errors, error_count=1, counts={},
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
            return load_file(
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


def load_file(
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
                    return quarantine_ingested(ingested, source, reason=exc.reason, errors=exc.errors,
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
                    RawSensorReading.objects.filter(file_id=ingested.id).delete()
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
                        return quarantine_ingested(
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
                    return quarantine_ingested(ingested, source, reason=reason, errors=stats.errors,
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
                    target = move_to_quarantine(ingested, source)
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
                    refresh_overall_on_commit(devices)
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
