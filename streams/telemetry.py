"""Telemetry (seed 000): machine metrics and work orders, persisted idempotently."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils import timezone

from .db import upsert_rows
from .decoding import EPOCH_MAX, EPOCH_MIN, FieldChecker, decode_json_object
from .kafka.registry import BatchOutcome, Envelope, MessageRejected
from .kafka.topics import topic_name
from .models import MachineMetric, WorkOrderReading



def validate_metric(data: dict[str, Any]) -> dict[str, Any]:
    check = FieldChecker(data)
    parsed = {
        "parameter_id": check.integer("id", minimum=0),
        "value": check.number("val"),
        "time": check.integer("time", minimum=EPOCH_MIN, maximum=EPOCH_MAX),
    }
    check.done()
    return parsed


def validate_workorder(data: dict[str, Any]) -> dict[str, Any]:
    check = FieldChecker(data)
    parsed = {
        "time": check.integer("time", minimum=EPOCH_MIN, maximum=EPOCH_MAX),
        "product": check.integer("product", minimum=0),
        "production": check.number("production", minimum=0),
    }
    check.done()
    return parsed


def decode(envelope: Envelope) -> tuple[str, dict[str, Any]]:
    data = decode_json_object(envelope.raw)
    if envelope.topic == topic_name("metrics"):
        return "metric", validate_metric(data)
    if envelope.topic == topic_name("workorders"):
        return "workorder", validate_workorder(data)
    raise MessageRejected(f"telemetry does not read topic {envelope.topic}")


def persist_metrics(rows: Sequence[dict[str, Any]]) -> int:
    """Upsert on (parameter_id, time); the last reading in a batch wins."""
    now = timezone.now()
    latest = {(r["parameter_id"], r["time"]): (r["parameter_id"], r["value"], r["time"], now) for r in rows}
    return upsert_rows(
        table=MachineMetric._meta.db_table,
        columns=["parameter_id", "value", "time", "received_at"],
        rows=list(latest.values()),
        conflict=["parameter_id", "time"],
        update=["value", "received_at"],
    )


def persist_workorders(rows: Sequence[dict[str, Any]]) -> int:
    now = timezone.now()
    latest = {(r["product"], r["time"]): (r["product"], r["production"], r["time"], now) for r in rows}
    return upsert_rows(
        table=WorkOrderReading._meta.db_table,
        columns=["product", "production", "time", "received_at"],
        rows=list(latest.values()),
        conflict=["product", "time"],
        update=["production", "received_at"],
    )


def handle_batch(envelopes: Sequence[Envelope]) -> BatchOutcome:
    metrics = [e.value[1] for e in envelopes if e.value[0] == "metric"]
    workorders = [e.value[1] for e in envelopes if e.value[0] == "workorder"]
    applied = 0
    if metrics:
        applied += persist_metrics(metrics)
    if workorders:
        applied += persist_workorders(workorders)
    return BatchOutcome(applied=applied)
