"""The hand-off to quarantine: a file that breaks the contract moves to the
quarantine directory and becomes a quarantine record (quarantine.services.
quarantine_file); ingest keeps the file, quarantine the record.

Called by: processing.py (a rejected or partially accepted file, one the
worker cannot get through).
"""

from __future__ import annotations

import logging
import pathlib
import shutil
import time

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from quarantine.services import quarantine_file

from ..inbox import quarantine_dir, safe_file_name
from ..models import IngestedFile

logger = logging.getLogger(__name__)
Status = IngestedFile.Status


def quarantine_target(ingested: IngestedFile) -> pathlib.Path:
    """Where a quarantined file lies (its id and checksum keep names apart)."""
    return quarantine_dir() / f"{ingested.id}-{ingested.checksum[:8]}-{safe_file_name(ingested.name)}"


def move_to_quarantine(ingested: IngestedFile, source: pathlib.Path) -> pathlib.Path:
    """The file's place in the quarantine directory. It is moved there once the
    caller's transaction (the quarantine record) has committed, never before: a
    rollback or a crash leaves it in the inbox, where `file_locate` and
    `quarantined_file_original` still find it."""
    target = quarantine_target(ingested)
    if source != target:
        def move() -> None:
            try:
                shutil.move(str(source), str(target))
            except FileNotFoundError:  # a concurrent run (a redelivered task) moved it already
                pass
        transaction.on_commit(move)
    return target


def quarantine_ingested(
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
    target = move_to_quarantine(ingested, source)
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
