"""Consumer positions kept in PostgreSQL, beside each batch's effects.

For a consumer with `offsets_in_db`, `record()` runs inside the batch's
transaction (apply.py) and stores, per partition, the offset after the last
message of the batch; `positions()` reads them when partitions are assigned,
and the loop (runtime.py) starts each partition at the larger of that and
Kafka's committed offset. So a batch whose transaction committed is never
applied again, even if the process died before the Kafka commit. The approach
is the one Kafka Streams and Flink take with an external transactional store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import connection
from psycopg2.extras import execute_values

from .models import ConsumerOffset
from .registry import Envelope

_TABLE = ConsumerOffset._meta.db_table


def record(group: str, envelopes: Sequence[Envelope]) -> None:
    """Store the position after `envelopes`, per partition: one statement, never moving back."""
    ends: dict[tuple[str, int], int] = {}
    for e in envelopes:
        key = (e.topic, e.partition)
        if e.offset + 1 > ends.get(key, -1):
            ends[key] = e.offset + 1
    if not ends:
        return
    with connection.cursor() as cursor:
        execute_values(
            cursor.cursor,
            f'INSERT INTO {_TABLE} ("group", topic, partition, next_offset, updated_at) VALUES %s '
            f'ON CONFLICT ("group", topic, partition) DO UPDATE SET '
            f"next_offset = GREATEST({_TABLE}.next_offset, EXCLUDED.next_offset), updated_at = now()",
            [(group, topic, partition, end) for (topic, partition), end in sorted(ends.items())],
            template="(%s, %s, %s, %s, now())",
        )


def positions(group: str, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """The stored next offsets of `partitions` (those never recorded are absent).

    FOR SHARE: while an operator's offset reset holds the rows (offset_reset.py), this
    waits for it and reads the positions it set, not the ones it is replacing."""
    wanted = list(partitions)
    if not wanted:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT o.topic, o.partition, o.next_offset FROM {_TABLE} o '
            f'JOIN unnest(%s::text[], %s::int[]) AS w(topic, partition) USING (topic, partition) '
            f'WHERE o."group" = %s FOR SHARE OF o',
            [[t for t, _ in wanted], [p for _, p in wanted], group],
        )
        return {(topic, partition): offset for topic, partition, offset in cursor.fetchall()}
