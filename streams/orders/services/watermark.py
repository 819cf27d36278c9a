"""Event time of the order windows: the watermark per (consumer group, partition),
the members' progress, and the idle rule (docs/streams.md, "Event time").

A group's watermark is the lowest newest-order-time of its partitions that are
not idle, minus ORDERS_WINDOW_GRACE_SECONDS; a partition is idle only when a
member reported it caught up for ORDERS_IDLE_CLOSE_SECONDS and still reports
it. `OrderWatermark` holds one row per partition: moved forward by the
batches (SEEN_SQL, in windows.py's apply statement for `order_windows`, after
the broker's ack for `orders`), and by the members' ticks (`record_progress`).
The `orders` consumer stamps its processed orders with its own watermark
(`orders_stamp`), which moves the downstream partitions.

The statements here are the definition windows.py's apply and close share, so
that "late" and "final" mean the same thing in every statement.

Callers: windows.py (WATERMARK_SQL, SEEN_SQL, the parameters), consumers.py
(the stamp, the rows moved after the publish, the ticks' progress), tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from django.conf import settings
from django.db import connection

from streams.kafka.registry import PartitionProgress

from ..models import OrderWatermark

WATERMARKS = OrderWatermark._meta.db_table

# A partition stops holding its group's watermark back only when it is truly idle:
# a member of the group has reported it applied up to its end (`caught_up_at`,
# refreshed by every tick of the member that owns it) without a break for the idle
# time (`idle_since`, cleared by every batch with a message from it). A partition
# that is unassigned, being rebalanced, owned by a dead or paused member (its
# reports stop for `fresh` seconds) or has unread messages holds the watermark at
# its last newest-order-time; one never seen (NULL) holds it undefined. Event time
# is a property of the data, never of how healthy the readers are.
NOT_IDLE = """NOT coalesce(idle_since <= now() - make_interval(secs => %(idle)s)
                 AND caught_up_at > now() - make_interval(secs => %(fresh)s), false)"""

# The group's watermark: the lowest newest-order-time of its partitions that are
# not idle, minus the grace; NULL while one of them was never seen. `quiet` (the
# wall-clock close may apply) only when no partition of the group, nor of the
# upstream group whose stamps it reads (`orders` for `order_windows`), is anything
# but idle: "no batch arrived" is not "no data".
WATERMARK_SQL = f"""
SELECT CASE WHEN bool_and(max_event_at IS NOT NULL) FILTER (WHERE group_id = %(group)s)
            THEN min(max_event_at) FILTER (WHERE group_id = %(group)s) END
       - make_interval(secs => %(grace)s) AS at,
       count(*) = 0 AS quiet
FROM {WATERMARKS}
WHERE group_id IN (%(group)s, %(upstream)s) AND {NOT_IDLE}
"""

# Move the watermark rows of the batch's partitions (`seen`: a JSON array of
# topic, partition, max_event_at) forward, never back; a message ends the
# partition's idle streak.
SEEN_SQL = f"""
INSERT INTO {WATERMARKS} AS m (group_id, topic, partition, max_event_at, seen_at)
SELECT %(group)s, topic, partition, max_event_at, now()
FROM json_to_recordset(%(seen)s::json) AS s(topic text, partition int, max_event_at timestamptz)
ORDER BY topic, partition
ON CONFLICT (group_id, topic, partition) DO UPDATE SET
    max_event_at = greatest(m.max_event_at, EXCLUDED.max_event_at),
    seen_at = EXCLUDED.seen_at,
    idle_since = NULL
"""

# A member's tick (PartitionProgress): its caught-up partitions keep or start
# their idle streak and say they are watched; its partitions with a backlog end
# theirs. Every partition of the input gets a row (NULL: never seen), so one no
# member has reported yet holds the watermark. Rows of partitions the input no
# longer has are removed (only when the member knows every partition).
_PROGRESS_SQL = f"""
WITH s AS (
    SELECT * FROM json_to_recordset(%(progress)s::json) AS s(topic text, partition int, state text)
), added AS (
    INSERT INTO {WATERMARKS} AS m (group_id, topic, partition, max_event_at, seen_at, caught_up_at, idle_since)
    SELECT %(group)s, topic, partition, NULL, NULL,
           CASE WHEN state = 'caught' THEN now() END, CASE WHEN state = 'caught' THEN now() END
    FROM s ORDER BY topic, partition
    ON CONFLICT (group_id, topic, partition) DO NOTHING
), gone AS (
    DELETE FROM {WATERMARKS} m
    WHERE m.group_id = %(group)s AND %(complete)s
      AND NOT EXISTS (SELECT 1 FROM s WHERE s.topic = m.topic AND s.partition = m.partition)
)
UPDATE {WATERMARKS} m SET
    caught_up_at = CASE WHEN s.state = 'caught' THEN now() ELSE m.caught_up_at END,
    idle_since = CASE WHEN s.state = 'caught' THEN coalesce(m.idle_since, now()) END
FROM s
WHERE m.group_id = %(group)s AND m.topic = s.topic AND m.partition = s.partition AND s.state <> 'other'
"""


@dataclass(frozen=True)
class PartitionSeen:
    """The newest order time of one partition in a batch (moves its watermark)."""

    topic: str
    partition: int
    max_event_at: datetime


def report_fresh_seconds() -> float:
    """How long a caught-up report counts: a few ticks. A partition whose member stops
    reporting (dead, paused, rebalanced away) holds the watermark again after this."""
    return max(10.0, 5 * settings.CONSUMER_TICK_SECONDS)


def event_time_params(group: str, upstream: str | None = None) -> dict[str, Any]:
    """The parameters of WATERMARK_SQL and NOT_IDLE for `group` (and the `upstream` group
    whose stamps it reads), from the settings, plus the window length."""
    return {"group": group, "upstream": upstream or group, "grace": settings.ORDERS_WINDOW_GRACE_SECONDS,
            "idle": settings.ORDERS_IDLE_CLOSE_SECONDS, "fresh": report_fresh_seconds(),
            "window": settings.ORDERS_WINDOW_SECONDS}


def record_progress(*, group: str, progress: PartitionProgress) -> None:
    """Store a member's PartitionProgress on its group's watermark rows (its tick's
    transaction): what lets a partition stop holding the watermark, or hold it again."""
    mine = {**{k: "caught" for k in progress.caught_up}, **{k: "behind" for k in progress.behind}}
    rows = [{"topic": t, "partition": p, "state": mine.pop((t, p), "other")} for t, p in progress.partitions]
    rows += [{"topic": t, "partition": p, "state": state} for (t, p), state in sorted(mine.items())]
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.execute(_PROGRESS_SQL, {"group": group, "progress": orjson.dumps(rows).decode(),
                                       "complete": bool(progress.partitions)})


def seen_json(seen: Sequence[PartitionSeen]) -> str:
    """`seen` as SEEN_SQL's JSON array."""
    return orjson.dumps([
        {"topic": s.topic, "partition": s.partition, "max_event_at": s.max_event_at} for s in seen
    ]).decode()


# The stamp of an `orders` batch: a time no order of this batch, nor any later order
# of the input, is older than. For a partition in the batch, its oldest order here;
# for every other partition that is not idle, its newest order published so far (the
# orders of a partition come in event-time order). NULL while such a partition was
# never seen. The rows move only after the batch's orders are acknowledged by the
# broker (orders_watermark_seen): a crash between the database commit and the publish
# replays those orders, and a row moved before them would have stamped other
# partitions' orders past them, so that they arrived late downstream.
_STAMP_SQL = f"""
WITH b AS (
    SELECT * FROM json_to_recordset(%(batch)s::json) AS b(topic text, partition int, min_event_at timestamptz)
), candidates AS (
    SELECT min_event_at AS at FROM b
    UNION ALL
    SELECT m.max_event_at FROM {WATERMARKS} m
    WHERE m.group_id = %(group)s AND {NOT_IDLE}
      AND NOT EXISTS (SELECT 1 FROM b WHERE b.topic = m.topic AND b.partition = m.partition)
)
SELECT CASE WHEN bool_and(at IS NOT NULL) THEN min(at) END FROM candidates
"""


def orders_stamp(*, group: str, oldest: Sequence[PartitionSeen]) -> datetime | None:
    """The `orders` consumer's stamp for a batch (_STAMP_SQL) whose oldest order per
    partition is `oldest`: no order of this batch or after it is older. None while a
    partition of the input that is not idle was never seen. Read-only, in the batch's
    transaction.

    Why: `processed-orders` is keyed by order, so one partition of it mixes the
    orders of every input partition. Had `order_windows` taken the newest order
    time of its own partitions, a batch of `orders` that read one input partition
    ahead of another would move every downstream partition past the other's
    orders, and those would arrive late."""
    with connection.cursor() as cursor:
        cursor.execute(_STAMP_SQL, {**event_time_params(group), "batch": orjson.dumps([
            {"topic": s.topic, "partition": s.partition, "min_event_at": s.max_event_at} for s in oldest
        ]).decode()})
        row = cursor.fetchone()
    return row[0] if row else None


def orders_watermark_seen(*, group: str, seen: Sequence[PartitionSeen]) -> None:
    """Move the `orders` group's rows by a batch's newest order per partition, once the
    broker acknowledged the batch's processed orders (BatchOutcome.after_publish)."""
    if seen:
        with connection.cursor() as cursor:
            cursor.execute(SEEN_SQL, {"group": group, "seen": seen_json(seen)})

