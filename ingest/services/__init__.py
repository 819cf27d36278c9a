"""Writes of the file-ingestion pipeline, one module per stage of a file's life:

    announcing.py          inbox scan and uploads -> a `file_events` message per complete file
    registration.py        an announced file -> an IngestedFile row, its processing queued;
                           stale and failed files queued again
    processing.py          a registered file validated and loaded (or handed to quarantine)
    quarantine_handoff.py  a file that breaks the contract -> the quarantine directory and a record
    aggregation.py         the overall statistics per device, refreshed after loads
    quarantine_source.py   what quarantine asks of ingest about a quarantined file
                           (registered as its FileSource in ingest/apps.py)

The consumer, the Celery tasks, the watcher, the API, the admin and the
quarantine console all call these; import them from `ingest.services` (the
names below), not from the modules.
"""

from .aggregation import aggregates_refresh
from .announcing import ScanResult, file_event, file_upload, inbox_publish
from .processing import file_locate, file_mark_failed, file_process, file_quarantine_unprocessable
from .quarantine_source import (
    quarantined_file_describe,
    quarantined_file_original,
    quarantined_file_rejected_rows,
    quarantined_file_release,
    quarantined_file_reprocess,
)
from .registration import file_register, files_requeue_failed, files_requeue_stale

__all__ = [
    "ScanResult", "aggregates_refresh", "file_event", "file_locate", "file_mark_failed", "file_process",
    "file_quarantine_unprocessable", "file_register", "file_upload", "files_requeue_failed",
    "files_requeue_stale", "inbox_publish", "quarantined_file_describe", "quarantined_file_original",
    "quarantined_file_rejected_rows", "quarantined_file_release", "quarantined_file_reprocess",
]
