"""Retention: a discarded record keeps its original (payload or file) for
QUARANTINE_RETENTION_DAYS; then the original is purged and the record, its
errors and its audit trail stay.

Called by: the `quarantine.purge_expired` task (hourly, Celery beat) and
`manage.py quarantine purge`.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from console.audit import Outcome, audit_record

from ..models import QuarantineAuditEntry, QuarantineRecord
from ..sources import file_original

logger = logging.getLogger(__name__)

Action = QuarantineAuditEntry.Action
Source = QuarantineRecord.Source
Status = QuarantineRecord.Status


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
            audit_record(by=None, action=Action.PURGE, outcome=Outcome.SUCCEEDED, subject=record,
                         reason="retention period ended",
                         detail={"file_removed": removed, "retain_until": str(record.retain_until)})
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
