"""Storing telemetry readings by the overwrite rule: the one write path of the telemetry tables.

Called by the `telemetry` consumer (consumers.py) for each batch, and by the
report's factory loader (streams/report/loader.py, a declared lookup) for a
data set, so a reading is stored and an overwrite recorded the same way
whichever door it came through.

The rule: a reading is keyed on (key, whole-second time), and the last one of
a key wins. One that replaces another with a different value, stored already
or earlier in the same call, is recorded as a TelemetryOverwrite, so two
readings in the same second never collapse silently. An identical reading (a
retried POST, a replayed batch, a data set loaded twice) writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

from streams.kafka.batchsql import number_array

from .models import MachineMetric, TelemetryOverwrite, WorkOrderReading

# Where each kind of reading is stored: its model, its key column and its value column.
_TABLES = {
    TelemetryOverwrite.Kind.METRIC: (MachineMetric, "parameter_id", "value"),
    TelemetryOverwrite.Kind.WORKORDER: (WorkOrderReading, "product", "production"),
}

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
# that the call's first value of its key replaces is recorded, like each
# replacement within the call (computed in Python, passed as arrays). A replay of
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


def readings_store(*, kind: TelemetryOverwrite.Kind, readings: Iterable[tuple[int, int, float]]) -> int:
    """Store (key, time, value) readings of one kind, in their order, by the overwrite rule.

    Returns the number of distinct (key, time) stored. Two statements at most,
    whatever the number of readings: one insert of the keys not stored yet, then,
    only for keys stored already or replaced within the call, one upsert that
    records what it replaces. The columns go as array literals
    (batchsql.number_array). Call it inside the caller's transaction."""
    model, key, value = _TABLES[kind]
    latest: dict[tuple[int, int], float] = {}
    first: dict[tuple[int, int], float] = {}  # the call's first value of each key: what a stored row gives way to
    replaced: list[tuple[int, int, float, float]] = []
    for reading_key, time, reading in readings:
        k = (reading_key, time)
        was = latest.get(k)
        if was is None:
            first[k] = reading
        elif was != reading:
            replaced.append((reading_key, time, was, reading))
        latest[k] = reading
    if not latest:
        return 0
    keys = list(latest)
    names = {"table": model._meta.db_table, "key": key, "value": value,
             "overwrites": TelemetryOverwrite._meta.db_table}
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
            "kind": kind.value,
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
