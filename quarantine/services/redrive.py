"""Re-drive and re-queue: a quarantined message published again to its
original topic, a failed task queued again, each carrying its replay count
so that replays are bounded (QUARANTINE_MAX_REPLAYS).

A re-driven message carries the platform's replay headers
(streams/kafka/headers.py: `x-replay-count`, which recording.py reads back when
the message is dead-lettered again, and `x-quarantine-record`). A re-queued
task carries Celery's, defined here once: `x_replay_count` (quarantine/signals.py
reads it back when the task fails again) and `x_quarantine_record`.

Called by: actions and bulk.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from console.audit import ActionError, ActionRefused
from streams.kafka import tracing
from streams.kafka.client import describe
from streams.kafka.headers import redrive_headers

from ..models import QuarantineRecord

# Celery message headers (attributes of the task's request, so no dashes).
TASK_REPLAY_COUNT_HEADER = "x_replay_count"
TASK_RECORD_HEADER = "x_quarantine_record"


def redrive(records: Sequence[QuarantineRecord], payloads: dict[int, bytes] | None = None) -> dict[int, dict[str, Any]]:
    """Publish the records' payloads to their original topics and wait for the
    broker to acknowledge every one; raises ActionError otherwise."""
    from streams.kafka.producer import DeliveryError, Outbound, action_ack_timeout, publish_and_wait

    payloads = payloads or {}
    messages = []
    details: dict[int, dict[str, Any]] = {}
    for record in records:
        value = payloads.get(record.pk, bytes(record.payload or b""))
        key = bytes(record.message_key) if record.message_key is not None else None
        # The stored headers, without the dead-letter and replay bookkeeping, plus the
        # incremented replay count and the record the message came from.
        headers = tracing.redriven(redrive_headers([(str(k), str(v).encode()) for k, v in record.headers or []],
                                                   replays=record.replay_count + 1, record=record.pk))
        messages.append(Outbound(topic=record.topic, value=value, key=key, headers=headers))
        details[record.pk] = {
            "topic": record.topic,
            "replay_count": record.replay_count + 1,
            "payload_edited": record.pk in payloads,
        }
        if record.pk in payloads:
            details[record.pk]["payload"] = value[:10000].decode("utf-8", "replace")
    try:
        publish_and_wait(messages, timeout=action_ack_timeout())
    except DeliveryError as exc:
        raise ActionError(f"the broker did not acknowledge the re-drive: {exc}") from exc
    except Exception as exc:  # e.g. KafkaException for an invalid topic: nothing was acknowledged
        raise ActionError(f"the re-drive could not be published: {describe(exc, limit=None)}") from exc
    return details


def requeue_task(record: QuarantineRecord, *, payload: bytes | None) -> dict[str, Any]:
    """Queue the task again. Sent inside the transaction (before the record is
    marked): Redis accepting the message is the acknowledgement we wait for."""
    from console.celery import app

    try:
        stored = json.loads(bytes(payload if payload is not None else (record.payload or b"{}")))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ActionRefused(f"the task payload is not JSON: {exc}") from exc
    if not isinstance(stored, dict) or not isinstance(stored.get("args", []), list) \
            or not isinstance(stored.get("kwargs", {}), dict):
        raise ActionRefused('the task payload must be {"args": [...], "kwargs": {...}}')
    task_id = str(uuid.uuid4())
    options: dict[str, Any] = {
        "task_id": task_id,
        "headers": {TASK_REPLAY_COUNT_HEADER: record.replay_count + 1, TASK_RECORD_HEADER: record.pk},
    }
    if stored.get("queue"):
        options["queue"] = stored["queue"]
    app.send_task(record.task_name, args=stored.get("args", []), kwargs=stored.get("kwargs", {}), **options)
    return {"task_id": task_id, "task_name": record.task_name, "replay_count": record.replay_count + 1,
            "payload_edited": payload is not None, "queue": stored.get("queue")}
