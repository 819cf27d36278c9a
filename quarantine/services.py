"""Writes to quarantine. Every pipeline calls these, never the model directly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .models import QuarantineRecord

if TYPE_CHECKING:
    from streams.kafka.registry import Rejection

MAX_ERRORS_KEPT = 1000


def quarantine_dead_letters(*, consumer: str, rejections: Sequence["Rejection"]) -> int:
    """Record rejected stream messages; a replayed message is recorded once."""
    records = [
        QuarantineRecord(
            source=QuarantineRecord.Source.MESSAGE,
            reason=r.reason[:500],
            errors=r.errors[:MAX_ERRORS_KEPT],
            error_count=max(len(r.errors), 1),
            consumer=consumer,
            topic=r.envelope.topic,
            partition=r.envelope.partition,
            offset=r.envelope.offset,
            message_key=r.envelope.key,
            headers=[[k, (v or b"").decode("utf-8", "replace")] for k, v in r.envelope.headers],
            payload=r.envelope.raw,
            replay_count=_replay_count(r.envelope.header("x-replay-count")),
        )
        for r in rejections
    ]
    created = QuarantineRecord.objects.bulk_create(records, ignore_conflicts=True)
    return len(created)


def _replay_count(raw: bytes | None) -> int:
    try:
        return int(raw or 0)
    except ValueError:
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
