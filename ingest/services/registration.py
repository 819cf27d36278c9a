"""Registration: an announced file becomes an IngestedFile row, and its
processing is queued once the transaction commits. Files stuck in progress,
or failed, are queued again from here too.

Called by: the `files` consumer (ingest/file_events.py), the `ingest.scan_inbox`
task (stale files), the admin's requeue action; quarantine_source.py resets a
file it sends back through the pipeline. It queues `ingest.process_file` by name,
because ingest.tasks imports these services.
"""

from __future__ import annotations

import logging
import pathlib
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from streams.kafka import tracing

from ..inbox import PathRejected, resolve_in_inbox, safe_file_name, sha256_of
from ..models import IngestedFile

logger = logging.getLogger(__name__)

PROCESS_TASK = "ingest.process_file"  # ingest/tasks.py
Status = IngestedFile.Status


def queue_processing(file_id: int) -> None:
    """Send the file's task once the transaction commits, in the caller's trace context
    (the file's announcement, or the request that re-ran it)."""
    from celery import current_app  # by name: ingest.tasks imports the services, never the other way

    context = tracing.current()

    def send() -> None:
        with tracing.span(f"send {PROCESS_TASK}", parent=context, kind=tracing.SpanKind.PRODUCER):
            current_app.send_task(PROCESS_TASK, args=[file_id], ignore_result=True)

    transaction.on_commit(send)


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
            reset_for_rerun(existing, size=size)
            queue_processing(existing.id)
        elif existing.status == Status.QUEUED:
            queue_processing(existing.id)  # the task is idempotent; a lost queue message must not strand the file
        return existing
    original = (IngestedFile.objects.filter(checksum=checksum, status__in=[Status.LOADED, *IngestedFile.IN_PROGRESS])
                .order_by("id").first())
    ingested, created = IngestedFile.objects.get_or_create(
        path=rel, checksum=checksum,
        defaults={
            "name": name[:255], "size": size, "trace_id": tracing.current_trace_id(),
            "status": Status.DUPLICATE if original else Status.QUEUED,
            "duplicate_of": original,
            "reason": f"same content (sha256) as file #{original.id} {original.name}" if original else "",
        },
    )
    if created and ingested.status == Status.QUEUED:
        queue_processing(ingested.id)
    logger.info("ingest_registered file=%s path=%s status=%s", ingested.id, rel, ingested.status)
    return ingested


def reset_for_rerun(ingested: IngestedFile, *, size: int | None = None) -> None:
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


def files_requeue_stale(*, older_than_seconds: int | None = None) -> list[int]:
    """Queue again files stuck in progress (no progress update for a while)."""
    seconds = settings.INGEST_STALE_SECONDS if older_than_seconds is None else older_than_seconds
    cutoff = timezone.now() - timedelta(seconds=seconds)
    stale = list(IngestedFile.objects.filter(status__in=IngestedFile.IN_PROGRESS, updated_at__lt=cutoff)
                 .values_list("id", flat=True))
    with transaction.atomic():
        for file_id in stale:
            queue_processing(file_id)
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
            reset_for_rerun(ingested)
            queue_processing(ingested.id)
            queued.append(ingested.id)
    logger.info("ingest_requeued_failed files=%s by=%s", queued, getattr(by, "username", by))
    return queued
