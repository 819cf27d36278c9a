"""The steps of the `files` consumer: `file_events` -> registered files -> Celery task.

Registered in ingest/consumers.py; run by `manage.py run_consumer files`.
Decoding is pure (inbox.check_relative_path); the batch calls
services.file_register, which queues the processing of each new file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streams.kafka import tracing
from streams.kafka.decoding import decode_json_object
from streams.kafka.registry import BatchOutcome, Envelope, MessageRejected, Rejection

from .inbox import PathRejected, check_relative_path
from .models import IngestedFile


def _path_error(value: str, exc: PathRejected) -> MessageRejected:
    return MessageRejected(exc.reason, [{"field": "file_path", "rule": exc.rule, "message": exc.reason,
                                         "value": value[:200]}])


def decode(envelope: Envelope) -> dict[str, Any]:
    """Pure checks: a JSON object with a relative `file_path` that stays inside."""
    data = decode_json_object(envelope.raw)
    file_path = data.get("file_path")
    if not isinstance(file_path, str):
        raise MessageRejected("file_path is required and must be a string",
                              [{"field": "file_path", "rule": "required", "message": "a string is required",
                                "value": repr(file_path)[:200]}])
    file_name = data.get("file_name")
    if file_name is not None and not isinstance(file_name, str):
        raise MessageRejected("file_name must be a string",
                              [{"field": "file_name", "rule": "type", "message": "must be a string",
                                "value": repr(file_name)[:200]}])
    try:
        relative = check_relative_path(file_path)
    except PathRejected as exc:
        raise _path_error(file_path, exc) from None
    return {"file_path": relative, "file_name": file_name}


def handle_batch(envelopes: Sequence[Envelope]) -> BatchOutcome:
    from .services import file_register

    rejected: list[Rejection] = []
    applied = 0
    for envelope in envelopes:
        value = envelope.value
        try:
            # In the announcement's own trace context (the batch's when it came without one).
            with tracing.span("register file", parent=tracing.message_traceparent(envelope.headers),
                              attributes={"console.file_path": value["file_path"][:200]}):
                file_register(file_path=value["file_path"], file_name=value["file_name"])
            applied += 1
        except PathRejected as exc:
            if exc.rule == "missing" and IngestedFile.objects.filter(path=value["file_path"]).exists():
                applied += 1  # a replayed event for a file that was handled and moved on
                continue
            error = _path_error(value["file_path"], exc)
            rejected.append(Rejection(envelope=envelope, reason=error.reason, errors=error.errors))
        except OSError as exc:  # unreadable while hashing: a recorded reason, never a stopped consumer
            error = _path_error(value["file_path"], PathRejected(
                f"{value['file_path'][:200]!r} cannot be read: {exc.strerror or exc}", "unreadable"))
            rejected.append(Rejection(envelope=envelope, reason=error.reason, errors=error.errors))
    return BatchOutcome(rejected=rejected, applied=applied)

