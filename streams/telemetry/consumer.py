"""The `telemetry` consumer (seed 000): metrics and workorders topics -> PostgreSQL, idempotently.

Registered in streams/consumers.py; run by `run_consumer telemetry`. Decodes
with the rules of rules.py, upserts with the platform's batch SQL
(streams.kafka.batchsql) and records overwritten readings. Imports the
platform and this package only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.utils import timezone

from streams.kafka.batchsql import upsert_rows
from streams.kafka.decoding import decode_json_object
from streams.kafka.registry import BatchOutcome, Envelope, MessageRejected
from streams.kafka.topics import topic_name

from .models import MachineMetric, TelemetryOverwrite, WorkOrderReading
from .rules import validate_metric, validate_workorder


def decode(envelope: Envelope) -> tuple[str, dict[str, Any]]:
    data = decode_json_object(envelope.raw)
    if envelope.topic == topic_name("metrics"):
        return "metric", validate_metric(data)
    if envelope.topic == topic_name("workorders"):
        return "workorder", validate_workorder(data)
    raise MessageRejected(f"telemetry does not read topic {envelope.topic}")


def _persist(*, kind: str, table: str, key: str, value: str, rows: Sequence[dict[str, Any]]) -> int:
    """Upsert readings on (key, time); the last reading of a key in a batch wins.

    A reading that replaces another with a different value (in this batch, or
    already stored) is recorded as a TelemetryOverwrite, so two readings in the
    same second never collapse silently. Three statements per batch; a replay
    writes nothing (same values)."""
    now = timezone.now()
    latest: dict[tuple[int, int], float] = {}
    first: dict[tuple[int, int], float] = {}  # the batch's first value of each key: what a stored row gives way to
    replaced: list[tuple[int, int, float, float]] = []
    for r in rows:
        k = (r[key], r["time"])
        first.setdefault(k, r[value])
        if k in latest and latest[k] != r[value]:
            replaced.append((k[0], k[1], latest[k], r[value]))
        latest[k] = r[value]
    keys = list(latest)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT t.{key}, t.time, t.{value} FROM {table} t "
            f"JOIN unnest(%s::int[], %s::bigint[]) AS k({key}, time) USING ({key}, time)",
            [[k[0] for k in keys], [k[1] for k in keys]],
        )
        for k0, k1, stored in cursor.fetchall():
            if stored != first[(k0, k1)]:
                replaced.append((k0, k1, stored, first[(k0, k1)]))
    upsert_rows(
        table=table,
        columns=[key, value, "time", "received_at"],
        rows=[(k[0], v, k[1], now) for k, v in latest.items()],
        conflict=[key, "time"],
        update=[value, "received_at"],
        only_if_changed=[value],
    )
    if replaced:
        TelemetryOverwrite.objects.bulk_create(
            [TelemetryOverwrite(kind=kind, key=a, time=b, old_value=old, new_value=new) for a, b, old, new in replaced],
            ignore_conflicts=True,
        )
    return len(latest)


def persist_metrics(rows: Sequence[dict[str, Any]]) -> int:
    return _persist(kind="metric", table=MachineMetric._meta.db_table, key="parameter_id", value="value", rows=rows)


def persist_workorders(rows: Sequence[dict[str, Any]]) -> int:
    return _persist(kind="workorder", table=WorkOrderReading._meta.db_table, key="product", value="production",
                    rows=rows)


def handle_batch(envelopes: Sequence[Envelope]) -> BatchOutcome:
    metrics = [e.value[1] for e in envelopes if e.value[0] == "metric"]
    workorders = [e.value[1] for e in envelopes if e.value[0] == "workorder"]
    applied = 0
    if metrics:
        applied += persist_metrics(metrics)
    if workorders:
        applied += persist_workorders(workorders)
    return BatchOutcome(applied=applied)
