"""The `telemetry` consumer (seed 000): metrics and workorders topics -> PostgreSQL, idempotently.

Registered in streams/consumers.py; run by `run_consumer telemetry`. Holds the
Kafka side only: decoding by the rules of rules.py, and each batch stored by
services.readings_store, which records the readings it overwrites.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streams.kafka.decoding import decode_json_object
from streams.kafka.registry import BatchOutcome, Envelope, MessageRejected
from streams.kafka.topics import topic_name

from .models import TelemetryOverwrite
from .rules import validate_metric, validate_workorder
from .services import readings_store

METRIC, WORKORDER = TelemetryOverwrite.Kind.METRIC, TelemetryOverwrite.Kind.WORKORDER


def decode(envelope: Envelope) -> tuple[str, dict[str, Any]]:
    data = decode_json_object(envelope.raw)
    if envelope.topic == topic_name("metrics"):
        return METRIC, validate_metric(data)
    if envelope.topic == topic_name("workorders"):
        return WORKORDER, validate_workorder(data)
    raise MessageRejected(f"telemetry does not read topic {envelope.topic}")


def handle_batch(envelopes: Sequence[Envelope]) -> BatchOutcome:
    metrics: list[tuple[int, int, float]] = []
    workorders: list[tuple[int, int, float]] = []
    for envelope in envelopes:
        kind, r = envelope.value
        if kind == METRIC:
            metrics.append((r["parameter_id"], r["time"], r["value"]))
        else:
            workorders.append((r["product"], r["time"], r["production"]))
    applied = 0
    if metrics:
        applied += readings_store(kind=METRIC, readings=metrics)
    if workorders:
        applied += readings_store(kind=WORKORDER, readings=workorders)
    return BatchOutcome(applied=applied)
