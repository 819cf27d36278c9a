"""Celery tasks of file ingestion: thin wrappers around services.

Called by: Celery (task names `ingest.process_file`, `ingest.scan_inbox`,
`ingest.refresh_overall_aggregates`, which beat rows and queued messages
refer to); services queue them after commit.
"""

from __future__ import annotations

import logging

import psycopg2

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerError

from streams.kafka.client import describe
from streams.kafka.registry import Source, register_source

from . import services
from .models import IngestedFile

logger = logging.getLogger(__name__)

# What each task does, for the pipeline map (console/ops/topology.py; key: the task's name).
register_source(Source("ingest.process_file", "task", "process_file", pipeline="files",
                       writes=("ingest.IngestedFile", "ingest.RawSensorReading", "ingest.SensorAggregate",
                               "ingest.OverallRefreshPending", "quarantine.QuarantineRecord"),
                       queues=("ingest.refresh_overall_aggregates",)))
register_source(Source("ingest.scan_inbox", "task", "scan_inbox (periodic)", produces=("file_events",),
                       writes=("ingest.InboxEntry",), queues=("ingest.process_file",), pipeline="files"))
register_source(Source("ingest.refresh_overall_aggregates", "task", "refresh_overall_aggregates",
                       writes=("ingest.SensorAggregate", "ingest.OverallRefreshPending"), pipeline="files"))

# Only these are worth a retry: the database or the broker was briefly away.
# Raw psycopg2 cursors (COPY, execute_values) raise psycopg2's own classes.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, psycopg2.OperationalError, psycopg2.InterfaceError,
                    BrokerError, ConnectionError)


@shared_task(
    name="ingest.process_file",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    # Nobody waits for the result (the file's row says how it went); with a result the
    # caller would also subscribe to the result backend, and a Redis outage would fail
    # `delay()` on that, not only on the queue.
    ignore_result=True,
    max_retries=settings.INGEST_TASK_MAX_RETRIES,
    soft_time_limit=settings.INGEST_TASK_TIME_LIMIT_SECONDS,
    time_limit=settings.INGEST_TASK_TIME_LIMIT_SECONDS + 60,
)
def process_file(self, file_id: int) -> str:
    """Validate, load and aggregate one registered file (idempotent).

    Bounded: a run past INGEST_TASK_TIME_LIMIT_SECONDS quarantines the file; a file
    whose runs keep dying is quarantined after INGEST_MAX_ATTEMPTS (file_process)."""
    try:
        ingested = services.file_process(file_id=file_id, task_id=self.request.id or "",
                                         count_attempt=self.request.retries == 0)
    except IngestedFile.DoesNotExist:
        logger.warning("ingest_task_unknown_file file=%s", file_id)
        return "unknown"
    except SoftTimeLimitExceeded:
        logger.error("ingest_task_time_limit file=%s", file_id)
        from django.db import connection

        connection.close()  # the interrupted transaction is gone with the connection
        ingested = IngestedFile.objects.get(id=file_id)
        services.file_quarantine_unprocessable(
            file_id=file_id, source=services.file_locate(ingested),
            reason=f"processing took longer than INGEST_TASK_TIME_LIMIT_SECONDS="
                   f"{settings.INGEST_TASK_TIME_LIMIT_SECONDS} s and was stopped",
            rule="time_limit")
        return "quarantined"
    except TRANSIENT_ERRORS as exc:
        if self.request.retries >= self.max_retries:
            logger.error("ingest_task_gave_up file=%s error=%s", file_id, exc)
            try:
                services.file_mark_failed(file_id=file_id, reason=f"gave up after {self.max_retries} retries: {exc}")
            except TRANSIENT_ERRORS:
                pass
            raise
        countdown = min(2 ** (self.request.retries + 1), 60)
        logger.warning("ingest_task_retry file=%s retry=%d in=%ss error=%s", file_id, self.request.retries + 1,
                       countdown, exc)
        raise self.retry(exc=exc, countdown=countdown)
    except Exception as exc:  # a bug or an unreadable file: record it, never loop
        logger.exception("ingest_task_failed file=%s", file_id)
        services.file_mark_failed(file_id=file_id, reason=describe(exc, limit=None))
        return "failed"
    return ingested.status


@shared_task(name="ingest.scan_inbox", acks_late=True, ignore_result=True)
def scan_inbox() -> dict[str, int]:
    """The periodic catch-all: announce complete files the watcher missed, and
    queue again files whose processing stalled (a dead worker)."""
    result = services.inbox_publish()
    stale = services.files_requeue_stale()
    return {"published": len(result.published), "pending": len(result.pending), "skipped": result.skipped,
            "requeued": len(stale)}


@shared_task(name="ingest.refresh_overall_aggregates", acks_late=True, ignore_result=True,
             autoretry_for=TRANSIENT_ERRORS, max_retries=5, retry_backoff=True)
def refresh_overall_aggregates(devices: list[str] | None = None) -> int:
    """Recompute overall statistics (all files) for the devices loads marked (or those given)."""
    return services.aggregates_refresh(devices=devices)
