"""The `telemetry` consumer (seed 000): metrics and workorders topics -> PostgreSQL, idempotently.

Registered in streams/consumers.py; run by `run_consumer telemetry`. Decodes
with the rules of rules.py, upserts with the platform's batch SQL
(streams.kafka.batchsql.number_array) and records overwritten readings in
the same statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection

from streams.kafka.batchsql import number_array
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


# The common case first: readings of keys not stored yet, inserted as they are
# (an insert costs PostgreSQL about half an upsert with its lookups). The keys it
# did not insert, because they are stored already, are returned for the upsert.
_INSERT_NEW_SQL = """
WITH inserted AS (
    INSERT INTO {table} ({key}, {value}, time, received_at)
    SELECT key, value, time, now()
    FROM unnest(%(keys)s::int[], %(times)s::bigint[], %(values)s::float8[]) AS i(key, time, value)
    ON CONFLICT ({key}, time) DO NOTHING
    RETURNING {key} AS key, time
)
SELECT i.key, i.time FROM unnest(%(keys)s::int[], %(times)s::bigint[]) AS i(key, time)
EXCEPT ALL SELECT key, time FROM inserted
"""

# Upsert readings and record what they replace, in one statement (one snapshot):
# `stored` reads the rows as they were before this statement, so a stored reading
# that the batch's first value of its key replaces is recorded, like each
# replacement within the batch (computed in Python, passed as arrays). A replay of
# the same values updates and records nothing.
_PERSIST_SQL = """
WITH incoming AS (
    SELECT * FROM unnest(%(keys)s::int[], %(times)s::bigint[], %(values)s::float8[], %(firsts)s::float8[])
        AS i(key, time, value, first)
), stored AS (
    SELECT i.key, i.time, t.{value} AS old_value, i.first AS new_value
    FROM {table} t JOIN incoming i ON t.{key} = i.key AND t.time = i.time
    WHERE t.{value} <> i.first
), upserted AS (
    INSERT INTO {table} AS t ({key}, {value}, time, received_at)
    SELECT key, value, time, now() FROM incoming
    ON CONFLICT ({key}, time) DO UPDATE SET {value} = EXCLUDED.{value}, received_at = EXCLUDED.received_at
    WHERE t.{value} IS DISTINCT FROM EXCLUDED.{value}
), replaced AS (
    SELECT * FROM stored
    UNION ALL
    SELECT * FROM unnest(%(r_keys)s::int[], %(r_times)s::bigint[], %(r_old)s::float8[], %(r_new)s::float8[])
)
INSERT INTO {overwrites} (kind, key, time, old_value, new_value, recorded_at)
SELECT %(kind)s, key, time, old_value, new_value, now() FROM replaced
ON CONFLICT (kind, key, time, old_value, new_value) DO NOTHING
"""


def _persist(*, kind: str, table: str, key: str, value: str, rows: Sequence[dict[str, Any]]) -> int:
    """Upsert readings on (key, time); the last reading of a key in a batch wins.

    A reading that replaces another with a different value (in this batch, or
    already stored) is recorded as a TelemetryOverwrite, so two readings in the
    same second never collapse silently. The columns are sent as array literals
    (batchsql.number_array): one insert of the new keys, then, only for keys
    stored already or replaced within the batch, one upsert that records what it
    replaces. A replay writes nothing."""
    latest: dict[tuple[int, int], float] = {}
    first: dict[tuple[int, int], float] = {}  # the batch's first value of each key: what a stored row gives way to
    replaced: list[tuple[int, int, float, float]] = []
    for r in rows:
        k = (r[key], r["time"])
        v = r[value]
        was = latest.get(k)
        if was is None:
            first[k] = v
        elif was != v:
            replaced.append((k[0], k[1], was, v))
        latest[k] = v
    keys = list(latest)
    names = {"table": table, "key": key, "value": value, "overwrites": TelemetryOverwrite._meta.db_table}
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_NEW_SQL.format(**names), {
            "keys": number_array(k[0] for k in keys),
            "times": number_array(k[1] for k in keys),
            "values": number_array(latest.values()),
        })
        keys = [(a, b) for a, b in cursor.fetchall()]  # stored already: upserted below
        if not keys and not replaced:
            return len(latest)
        cursor.execute(_PERSIST_SQL.format(**names), {
            "kind": kind,
            "keys": number_array(k[0] for k in keys),
            "times": number_array(k[1] for k in keys),
            "values": number_array(latest[k] for k in keys),
            "firsts": number_array(first[k] for k in keys),
            "r_keys": number_array(r[0] for r in replaced),
            "r_times": number_array(r[1] for r in replaced),
            "r_old": number_array(r[2] for r in replaced),
            "r_new": number_array(r[3] for r in replaced),
        })
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
