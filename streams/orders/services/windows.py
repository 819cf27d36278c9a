"""Real-time order analytics (seed 002): the order rules, enrichment and the windows.

Two consumers:

* `orders` reads `orders`, validates each order (ids, amount, timestamp;
  product known and not deleted, looked up once per batch), enriches it with
  the product's name and category and publishes it to `processed-orders`
  keyed by order id (spread evenly over the partitions). Rejected orders go to
  `orders-dlq` and quarantine.
* `order_windows` reads `processed-orders` and keeps 1-minute tumbling
  windows per product, in event time. Exactly-once effects come from one SQL
  statement per batch: the orders are inserted idempotently (unique
  `order_id`, ON CONFLICT DO NOTHING RETURNING) and only the rows that
  statement really inserted are added to their windows. A replayed batch or a
  re-driven duplicate inserts nothing, so it adds nothing.

Event time (docs/streams.md): the same statement moves a watermark per
(consumer group, partition) in `OrderWatermark`. A window is final once the
group's watermark (the lowest newest-order-time of the partitions active
within ORDERS_IDLE_CLOSE_SECONDS, minus ORDERS_WINDOW_GRACE_SECONDS) passes
its end, or, when no partition is active, once the wall clock passes its end
+ grace + idle close. An order for a final window is late: stored, counted on
the window (`late_count`, `late_revenue`), not added, until an operator
releases it (`order_windows_release_late`, audited, exactly once). Open
windows a batch changed are published to `product-metrics` after the
commit with their absolute values and `"final": false`; a final window is
published once more, `"final": true`, and marked after the broker's ack.

Long: one SQL statement per step of a window's life (apply, close, publish
the final state, release, rebuild), each beside the function that runs it and
sharing the watermark's definition; split apart, the statements that must
agree on what "late" and "final" mean would live in different files.

This module holds what the two consumers (consumers.py) do to the data; the
consumers hold only the Kafka side. Callers: consumers.py, the admin
and the API (rebuild, release), tests.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from confluent_kafka import KafkaException
from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.db import connection, transaction

from console.audit import audit_record
from streams.kafka.decoding import FieldChecker, parse_timestamp
from streams.kafka.producer import DeliveryError, Outbound, produce_and_wait
from streams.kafka.registry import PartitionProgress
from streams.kafka.topics import topic_name

from .models import OrderWatermark, ProcessedOrder, ProductWindow

MAX_AMOUNT = Decimal("999999999999.99")


class _Checker(FieldChecker):
    """FieldChecker plus the order-specific rules."""

    def amount(self, name: str) -> Decimal | None:
        value = self.data.get(name)
        if value is None:
            self._fail(name, "required", "this field is required")
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            self._fail(name, "number", "must be a number")
            return None
        try:
            amount = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
        except InvalidOperation:
            self._fail(name, "number", "must be a number")
            return None
        if not amount.is_finite():
            self._fail(name, "number", "must be a finite number")
            return None
        if amount <= 0:
            self._fail(name, "positive", "must be greater than 0")
            return None
        if amount > MAX_AMOUNT:
            self._fail(name, "max", f"must be at most {MAX_AMOUNT}")
            return None
        if amount.as_tuple().exponent < -2 and amount != amount.quantize(Decimal("0.01")):
            self._fail(name, "precision", "must have at most 2 decimal places")
            return None
        return amount.quantize(Decimal("0.01"))


# Slotted, not frozen: built once per message on both hops, where a frozen
# dataclass's __init__ cost three times as much (1.0 against 0.34 us).
@dataclass(slots=True)
class Order:
    order_id: str
    user_id: str
    product_id: str
    amount: Decimal
    timestamp: datetime


CENT = Decimal("0.01")


def plain_text(value: Any, max_length: int) -> str | None:
    """`value` stripped, when it is an ASCII string of 1..max_length characters without
    NUL: text every rule of `_Checker.identifier` accepts as is. None otherwise (the
    full rules then decide, and say why)."""
    if type(value) is not str:
        return None
    value = value.strip()
    if not value or len(value) > max_length or not value.isascii() or "\x00" in value:
        return None
    return value


def _plain_order(data: dict[str, Any]) -> Order | None:
    """The well-formed order of the hot path, by the same rules as `validate_order`
    without the checker's bookkeeping: string ids, a float or int amount written
    without an exponent, a timestamp. None for anything else (then validate_order
    applies the full rules and reports every error)."""
    order_id = plain_text(data.get("order_id"), 128)
    user_id = plain_text(data.get("user_id"), 128)
    product_id = plain_text(data.get("product_id"), 64)
    amount, moment = data.get("amount"), data.get("timestamp")
    if order_id is None or user_id is None or product_id is None or type(moment) is not str:
        return None
    if type(amount) is float:
        text = repr(amount)
    elif type(amount) is int:
        text = str(amount)
    else:
        return None
    dot = text.find(".")
    if "e" in text or "n" in text or (dot >= 0 and len(text) - dot > 3):  # exponent, nan/inf, > 2 decimals
        return None
    value = Decimal(text)
    if value <= 0 or value > MAX_AMOUNT:
        return None
    try:
        timestamp = parse_timestamp(moment)
    except ValueError:
        return None
    return Order(order_id=order_id, user_id=user_id, product_id=product_id, amount=value.quantize(CENT),
                 timestamp=timestamp)


def validate_order(data: dict[str, Any]) -> Order:
    plain = _plain_order(data)
    if plain is not None:
        return plain
    check = _Checker(data)
    fields = {
        "order_id": check.identifier("order_id"),
        "user_id": check.identifier("user_id"),
        "product_id": check.identifier("product_id", max_length=64),
        "amount": check.amount("amount"),
        "timestamp": check.timestamp("timestamp"),
    }
    check.done()
    return Order(**fields)  # type: ignore[arg-type]


def enrich_order(order: Order, *, product_name: str, category: str, processed_at: datetime) -> dict[str, Any]:
    """The `processed-orders` message: the order plus catalog data and processed_at. The
    times stay datetimes: Outbound writes them in C, as `iso` would (UTC, `Z`)."""
    return {
        "order_id": order.order_id,
        "user_id": order.user_id,
        "product_id": order.product_id,
        "amount": float(order.amount),
        "timestamp": order.timestamp,
        "product_name": product_name,
        "category": category,
        "processed_at": processed_at,
    }


@dataclass(slots=True)
class ProcessedOrderIn:
    order: Order
    product_name: str
    category: str
    processed_at: datetime
    upstream_mark: datetime | None = None  # the watermark `orders` stamped on it (UPSTREAM_WATERMARK_HEADER)


def window_start_of(moment: datetime, *, window_seconds: int) -> datetime:
    epoch = int(moment.timestamp() // window_seconds) * window_seconds
    return datetime.fromtimestamp(epoch, tz=UTC)


_ORDERS = ProcessedOrder._meta.db_table
# The batch's orders, staged by COPY in a temporary table of the session (emptied
# at commit) for the statements that apply them: COPY's text format costs the
# server a third of what parsing the same rows from one JSON literal did (30
# against 87 ms for 20,000 orders), and the rows are sent without the SQL lexer.
_STAGED = "order_windows_staged"
_STAGED_COLUMNS = ("order_id", "user_id", "product_id", "product_name", "category", "amount", "ordered_at",
                   "processed_at")
_STAGE_SQL = f"""
CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGED} (
    order_id text, user_id text, product_id text, product_name text, category text,
    amount numeric, ordered_at timestamptz, processed_at timestamptz
) ON COMMIT DELETE ROWS;
DELETE FROM {_STAGED}
"""
# An order's window, as window_start_of computes it: date_bin's integer arithmetic in C
# (PostgreSQL 14+), where floor(extract(epoch ...)) went through numeric for every row.
_WINDOW_START_SQL = "date_bin(make_interval(secs => %(window)s), ordered_at, 'epoch'::timestamptz)"
_WINDOWS = ProductWindow._meta.db_table
_WATERMARKS = OrderWatermark._meta.db_table

# A partition stops holding its group's watermark back only when it is truly idle:
# a member of the group has reported it applied up to its end (`caught_up_at`,
# refreshed by every tick of the member that owns it) without a break for the idle
# time (`idle_since`, cleared by every batch with a message from it). A partition
# that is unassigned, being rebalanced, owned by a dead or paused member (its
# reports stop for `fresh` seconds) or has unread messages holds the watermark at
# its last newest-order-time; one never seen (NULL) holds it undefined. Event time
# is a property of the data, never of how healthy the readers are.
_NOT_IDLE = """NOT coalesce(idle_since <= now() - make_interval(secs => %(idle)s)
                 AND caught_up_at > now() - make_interval(secs => %(fresh)s), false)"""

# The group's watermark: the lowest newest-order-time of its partitions that are
# not idle, minus the grace; NULL while one of them was never seen. `quiet` (the
# wall-clock close may apply) only when no partition of the group, nor of the
# upstream group whose stamps it reads (`orders` for `order_windows`), is anything
# but idle: "no batch arrived" is not "no data".
_WATERMARK_SQL = f"""
SELECT CASE WHEN bool_and(max_event_at IS NOT NULL) FILTER (WHERE group_id = %(group)s)
            THEN min(max_event_at) FILTER (WHERE group_id = %(group)s) END
       - make_interval(secs => %(grace)s) AS at,
       count(*) = 0 AS quiet
FROM {_WATERMARKS}
WHERE group_id IN (%(group)s, %(upstream)s) AND {_NOT_IDLE}
"""

# Move the watermark rows of the batch's partitions (`seen`: a JSON array of
# topic, partition, max_event_at) forward, never back; a message ends the
# partition's idle streak.
_SEEN_SQL = f"""
INSERT INTO {_WATERMARKS} AS m (group_id, topic, partition, max_event_at, seen_at)
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
    INSERT INTO {_WATERMARKS} AS m (group_id, topic, partition, max_event_at, seen_at, caught_up_at, idle_since)
    SELECT %(group)s, topic, partition, NULL, NULL,
           CASE WHEN state = 'caught' THEN now() END, CASE WHEN state = 'caught' THEN now() END
    FROM s ORDER BY topic, partition
    ON CONFLICT (group_id, topic, partition) DO NOTHING
), gone AS (
    DELETE FROM {_WATERMARKS} m
    WHERE m.group_id = %(group)s AND %(complete)s
      AND NOT EXISTS (SELECT 1 FROM s WHERE s.topic = m.topic AND s.partition = m.partition)
)
UPDATE {_WATERMARKS} m SET
    caught_up_at = CASE WHEN s.state = 'caught' THEN now() ELSE m.caught_up_at END,
    idle_since = CASE WHEN s.state = 'caught' THEN coalesce(m.idle_since, now()) END
FROM s
WHERE m.group_id = %(group)s AND m.topic = s.topic AND m.partition = s.partition AND s.state <> 'other'
"""

# Insert the batch's orders idempotently and add exactly the inserted, on-time
# ones to their windows, in one statement (so in one snapshot, one transaction
# and one round trip), which returns the windows it changed (their new state)
# and how many orders it stored, and how many of them late. The window of an
# order is computed here from its time, as window_start_of does. An order is late when its window is final, or when the
# watermark before this batch has passed the window's end (a window that has no
# row yet); a late order is stored with `late` and counted on its window's
# late_count/late_revenue, never in its totals. The touched windows are locked
# first (FOR UPDATE returns their newest committed state), so a concurrent close
# cannot finalize a window between this classification and the update. The
# batch's partitions move their watermark rows forward in the same statement.
# Every touched window has a row by then (_CREATE_WINDOWS_SQL, the statement
# before), so there is always a row to lock.
_APPLY_SQL = f"""
WITH incoming AS (
    SELECT t.*, {_WINDOW_START_SQL} AS window_start FROM {_STAGED} t
), mark AS ({_WATERMARK_SQL}
), existing AS (
    SELECT w.product_id, w.window_start, w.final
    FROM {_WINDOWS} w
    WHERE (w.product_id, w.window_start) IN (SELECT product_id, window_start FROM incoming)
    ORDER BY w.product_id, w.window_start
    FOR UPDATE OF w
), inserted AS (
    INSERT INTO {_ORDERS} AS o
        (order_id, user_id, product_id, product_name, category,
         amount, ordered_at, window_start, processed_at, stored_at, late)
    SELECT i.order_id, i.user_id, i.product_id, i.product_name, i.category,
           i.amount, i.ordered_at, i.window_start, i.processed_at, now(),
           coalesce(e.final, false)
           OR coalesce(i.window_start + make_interval(secs => %(window)s) <= mark.at, false)
    FROM incoming i CROSS JOIN mark
    LEFT JOIN existing e ON e.product_id = i.product_id AND e.window_start = i.window_start
    ON CONFLICT (order_id) DO NOTHING
    RETURNING o.product_id, o.product_name, o.window_start, o.amount, o.late
), deltas AS (
    SELECT product_id, max(product_name) AS product_name, window_start,
           count(*) FILTER (WHERE NOT late) AS n,
           coalesce(sum(amount) FILTER (WHERE NOT late), 0) AS revenue,
           count(*) FILTER (WHERE late) AS late_n,
           coalesce(sum(amount) FILTER (WHERE late), 0) AS late_revenue
    FROM inserted GROUP BY product_id, window_start
), seen AS ({_SEEN_SQL}), windows AS (
INSERT INTO {_WINDOWS} AS w
    (product_id, product_name, window_start, window_end,
     order_count, total_revenue, avg_order_value, late_count, late_revenue, final, finalized_at, updated_at)
SELECT product_id, product_name, window_start, window_start + make_interval(secs => %(window)s),
       n, revenue, CASE WHEN n > 0 THEN round(revenue / n, 2) ELSE 0 END, late_n, late_revenue,
       late_n > 0, CASE WHEN late_n > 0 THEN now() END, now()
FROM deltas
ORDER BY product_id, window_start
ON CONFLICT (product_id, window_start) DO UPDATE SET
    product_name = CASE WHEN w.final THEN w.product_name ELSE EXCLUDED.product_name END,
    order_count = w.order_count + EXCLUDED.order_count,
    total_revenue = w.total_revenue + EXCLUDED.total_revenue,
    avg_order_value = CASE WHEN w.order_count + EXCLUDED.order_count > 0
                           THEN round((w.total_revenue + EXCLUDED.total_revenue)
                                      / (w.order_count + EXCLUDED.order_count), 2)
                           ELSE 0 END,
    late_count = w.late_count + EXCLUDED.late_count,
    late_revenue = w.late_revenue + EXCLUDED.late_revenue,
    final = w.final OR EXCLUDED.final,
    finalized_at = coalesce(w.finalized_at, EXCLUDED.finalized_at),
    updated_at = now()
RETURNING w.product_id, w.product_name, w.window_start, w.window_end,
          w.order_count, w.total_revenue, w.avg_order_value, w.final, w.id
)
SELECT windows.*, counts.stored, counts.late
FROM (SELECT count(*) AS stored, count(*) FILTER (WHERE late) AS late FROM inserted) counts
LEFT JOIN windows ON true
"""

# The windows a batch touches that have no row yet, created empty before the
# batch is applied. Two consumers creating the same window at once would
# otherwise both classify their orders against no row (neither sees the other's
# uncommitted insert), and the second would add on-time totals to a window the
# first made final with late orders. With the rows created first, the second
# waits on the first's row (its unique key) until that commits, and its apply,
# a new statement, locks and sees the window as the first left it. Returns the
# rows it created, so that one the batch did not fill (all its orders were
# stored already) is removed again.
_CREATE_WINDOWS_SQL = f"""
INSERT INTO {_WINDOWS} AS w
    (product_id, product_name, window_start, window_end,
     order_count, total_revenue, avg_order_value, late_count, late_revenue, final, updated_at)
SELECT product_id, max(product_name), start, start + make_interval(secs => %(window)s), 0, 0, 0, 0, 0, false, now()
FROM (SELECT product_id, product_name, {_WINDOW_START_SQL} AS start FROM {_STAGED}) t
GROUP BY product_id, start
ORDER BY product_id, start
ON CONFLICT (product_id, window_start) DO NOTHING
RETURNING w.id, w.product_id, w.window_start
"""

# Finalize the windows that are due: the watermark passed their end, or no
# partition of the group is active and the wall clock passed end + grace + idle.
_CLOSE_SQL = f"""
WITH mark AS ({_WATERMARK_SQL}
), due AS (
    SELECT w.id FROM {_WINDOWS} w CROSS JOIN mark
    WHERE NOT w.final
      AND (w.window_end <= mark.at
           OR (mark.quiet AND w.window_end + make_interval(secs => %(grace)s + %(idle)s) <= now()))
    ORDER BY w.product_id, w.window_start
    FOR UPDATE OF w SKIP LOCKED
)
UPDATE {_WINDOWS} w SET final = true, finalized_at = now(), updated_at = now()
FROM due WHERE w.id = due.id
RETURNING w.product_id, extract(epoch FROM w.window_start)::bigint
"""

_COLUMNS = "w.product_id, w.product_name, w.window_start, w.window_end, " \
           "w.order_count, w.total_revenue, w.avg_order_value, w.final"

# Final windows whose final state the broker has not acknowledged yet. Locked
# (SKIP LOCKED: another consumer or a release is publishing that one) until the
# caller's transaction marks them.
_UNPUBLISHED_SQL = f"""
SELECT w.id, {_COLUMNS}
FROM {_WINDOWS} w
WHERE w.final AND w.final_published_at IS NULL AND (%(ids)s::bigint[] IS NULL OR w.id = ANY(%(ids)s::bigint[]))
ORDER BY w.window_start, w.product_id
LIMIT %(limit)s
FOR UPDATE OF w SKIP LOCKED
"""

# Rebuild windows from the stored orders (repairs, a changed window size): late
# orders not released stay out of the totals and in late_count. A final window
# whose totals change this way is published again (final_published_at cleared).
_REBUILD_SQL = f"""
INSERT INTO {_WINDOWS} AS w
    (product_id, product_name, window_start, window_end,
     order_count, total_revenue, avg_order_value, late_count, late_revenue, updated_at)
SELECT product_id, max(product_name), window_start, window_start + make_interval(secs => %s),
       count(*) FILTER (WHERE counted), coalesce(sum(amount) FILTER (WHERE counted), 0),
       coalesce(round(sum(amount) FILTER (WHERE counted) / nullif(count(*) FILTER (WHERE counted), 0), 2), 0),
       count(*) FILTER (WHERE NOT counted), coalesce(sum(amount) FILTER (WHERE NOT counted), 0), now()
FROM (SELECT *, NOT late OR released_at IS NOT NULL AS counted FROM {_ORDERS}) o
WHERE (%s::text IS NULL OR product_id = %s::text)
GROUP BY product_id, window_start
ON CONFLICT (product_id, window_start) DO UPDATE SET
    product_name = EXCLUDED.product_name,
    window_end = EXCLUDED.window_end,
    order_count = EXCLUDED.order_count,
    total_revenue = EXCLUDED.total_revenue,
    avg_order_value = EXCLUDED.avg_order_value,
    late_count = EXCLUDED.late_count,
    late_revenue = EXCLUDED.late_revenue,
    final_published_at = CASE WHEN (w.order_count, w.total_revenue)
                                   IS DISTINCT FROM (EXCLUDED.order_count, EXCLUDED.total_revenue)
                              THEN NULL ELSE w.final_published_at END,
    updated_at = now()
"""

# Release a window's held late orders into its totals, once: only orders still
# unreleased are marked, and only those marked here are added (a second release,
# or a concurrent one, finds none). The window is published again as final.
_RELEASE_SQL = f"""
WITH released AS (
    UPDATE {_ORDERS} o SET released_at = now(), released_by_id = %(by)s
    FROM {_WINDOWS} w
    WHERE w.id = ANY(%(ids)s::bigint[]) AND o.product_id = w.product_id AND o.window_start = w.window_start
      AND o.late AND o.released_at IS NULL
    RETURNING w.id AS window_id, o.amount
), deltas AS (
    SELECT window_id, count(*) AS n, sum(amount) AS revenue FROM released GROUP BY window_id
)
UPDATE {_WINDOWS} w SET
    order_count = w.order_count + d.n,
    total_revenue = w.total_revenue + d.revenue,
    avg_order_value = round((w.total_revenue + d.revenue) / (w.order_count + d.n), 2),
    late_count = w.late_count - d.n,
    late_revenue = w.late_revenue - d.revenue,
    final_published_at = NULL,
    updated_at = now()
FROM deltas d WHERE w.id = d.window_id
RETURNING w.id, d.n, d.revenue, w.order_count, w.total_revenue
"""


def window_message(row: Sequence[Any]) -> dict[str, Any]:
    """The seed's `product-metrics` format (epoch-second bounds, rounded money) plus `final`."""
    product_id, product_name, start, end, count, revenue, avg, final = row
    return {
        "window_start": int(start.timestamp()),
        "window_end": int(end.timestamp()),
        "product_id": product_id,
        "product_name": product_name,
        "order_count": int(count),
        "total_revenue": float(revenue),
        "avg_order_value": float(avg),
        "final": bool(final),
    }


def report_fresh_seconds() -> float:
    """How long a caught-up report counts: a few ticks. A partition whose member stops
    reporting (dead, paused, rebalanced away) holds the watermark again after this."""
    return max(10.0, 5 * settings.CONSUMER_TICK_SECONDS)


def _event_time_params(group: str, upstream: str | None = None) -> dict[str, Any]:
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


# The header `orders` stamps on each processed order: its own watermark (without
# the grace) from before the batch that order came in. Every order of that batch
# is at least that new, and `order_windows` moves its partitions' watermarks by
# the stamps, not by the orders' own times (consumers.handle_order_windows).
UPSTREAM_WATERMARK_HEADER = "x-upstream-watermark"

def _seen_json(seen: Sequence[PartitionSeen]) -> str:
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
    SELECT m.max_event_at FROM {_WATERMARKS} m
    WHERE m.group_id = %(group)s AND {_NOT_IDLE}
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
        cursor.execute(_STAMP_SQL, {**_event_time_params(group), "batch": orjson.dumps([
            {"topic": s.topic, "partition": s.partition, "min_event_at": s.max_event_at} for s in oldest
        ]).decode()})
        row = cursor.fetchone()
    return row[0] if row else None


def orders_watermark_seen(*, group: str, seen: Sequence[PartitionSeen]) -> None:
    """Move the `orders` group's rows by a batch's newest order per partition, once the
    broker acknowledged the batch's processed orders (BatchOutcome.after_publish)."""
    if seen:
        with connection.cursor() as cursor:
            cursor.execute(_SEEN_SQL, {"group": group, "seen": _seen_json(seen)})


@dataclass(frozen=True)
class PartitionSeen:
    """The newest order time of one partition in a batch (moves its watermark)."""

    topic: str
    partition: int
    max_event_at: datetime


@dataclass(frozen=True)
class WindowsApplied:
    stored: int  # orders newly stored (on time and late)
    late: int  # of which late: stored and counted on a final window, not added
    open_windows: list[dict[str, Any]]  # current state of the windows the batch changed, still open


_COPY_SPECIALS = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_rows(rows: Sequence[ProcessedOrderIn]) -> str:
    """`rows` in COPY's text format (_STAGED_COLUMNS). The times are written by orjson
    in one call (RFC 3339, UTC, Z). Text fields are escaped only when the batch holds
    a backslash, tab or line break at all (the common case has none)."""
    moments = orjson.dumps([t for r in rows for t in (r.order.timestamp, r.processed_at)],
                           option=orjson.OPT_UTC_Z).decode()[2:-2].split('","')
    def text(escape: bool) -> str:
        if escape:
            lines = ["\t".join((*(f.translate(_COPY_SPECIALS) for f in (
                         o.order_id, o.user_id, o.product_id, r.product_name, r.category)),
                         str(o.amount), moments[2 * i], moments[2 * i + 1]))
                     for i, r in enumerate(rows) for o in (r.order,)]
        else:
            lines = [f"{o.order_id}\t{o.user_id}\t{o.product_id}\t{r.product_name}\t{r.category}\t"
                     f"{o.amount}\t{moments[2 * i]}\t{moments[2 * i + 1]}"
                     for i, r in enumerate(rows) for o in (r.order,)]
        return "\n".join(lines) + "\n" if lines else ""
    plain = text(escape=False)
    if "\\" in plain or "\r" in plain or plain.count("\t") != 7 * len(rows) or plain.count("\n") != len(rows):
        return text(escape=True)
    return plain


def order_windows_apply(
    *, orders: Sequence[ProcessedOrderIn], group: str = "", seen: Sequence[PartitionSeen] = (),
    upstream: str | None = None,
) -> WindowsApplied:
    """Store orders once each; add the new on-time ones to their windows, count the late ones.

    `group` is the consumer group whose watermark decides lateness, `seen` the
    batch's partitions, which move it. Returns the windows the batch changed
    that are still open (the final ones are published by
    `order_windows_publish_final`). The orders are staged by COPY, their missing
    windows created, then one statement applies them; must run inside the
    caller's transaction (the consumer's batch transaction).
    """
    unique: dict[str, ProcessedOrderIn] = {}
    for item in orders:
        unique.setdefault(item.order.order_id, item)
    # A stable order of keys keeps concurrent writers (two groups, a rebalance)
    # from locking the same unique keys in opposite orders and deadlocking.
    rows = [unique[k] for k in sorted(unique)]
    window_seconds = settings.ORDERS_WINDOW_SECONDS
    params = _event_time_params(group, upstream)
    with connection.cursor() as cursor:
        cursor.execute(_STAGE_SQL)
        cursor.copy_expert(f"COPY {_STAGED} ({', '.join(_STAGED_COLUMNS)}) FROM STDIN", io.StringIO(_copy_rows(rows)))
        cursor.execute(_CREATE_WINDOWS_SQL, {"window": window_seconds})
        created = {row[0] for row in cursor.fetchall()}
        cursor.execute(_APPLY_SQL, {**params, "seen": _seen_json(seen)})
        result = cursor.fetchall()
        unfilled = created - {row[8] for row in result if row[0] is not None}
        if unfilled:
            cursor.execute(f"DELETE FROM {_WINDOWS} WHERE id = ANY(%s::bigint[])", [sorted(unfilled)])
    stored, late = (result[0][-2], result[0][-1]) if result else (0, 0)
    changed = sorted((row[:8] for row in result if row[0] is not None and not row[7]), key=lambda r: (r[2], r[0]))
    return WindowsApplied(stored=stored, late=late, open_windows=[window_message(row) for row in changed])


def order_windows_close(*, group: str, upstream: str | None = None) -> set[tuple[str, int]]:
    """Mark the windows that are due as final (the watermark of `group` passed their
    end, or the group and its `upstream` group are quiet and the wall clock passed end
    + grace + idle close). Returns them, as (product_id, window_start epoch seconds).
    Inside the caller's transaction (a batch's or a tick's)."""
    with connection.cursor() as cursor:
        cursor.execute(_CLOSE_SQL, _event_time_params(group, upstream))
        return {(product_id, int(start)) for product_id, start in cursor.fetchall()}


def order_windows_publish_final(*, ids: Sequence[int] | None = None, limit: int = 5000) -> int:
    """Publish final windows not yet published (or only `ids`) and mark them once the
    broker acknowledged them, in the caller's transaction. Returns how many.

    The mark follows the ack, so a window's final state is never lost; a crash (or a
    rolled-back transaction) between the ack and the commit publishes it once more,
    with the same content: a consumer of product-metrics keeps the newest message
    per window. Raises DeliveryError (transient) when the broker does not ack."""
    with connection.cursor() as cursor:
        cursor.execute(_UNPUBLISHED_SQL, {"ids": list(ids) if ids is not None else None, "limit": limit})
        rows = cursor.fetchall()
        if not rows:
            return 0
        target = topic_name("product_metrics")
        messages = [window_message(row[1:]) for row in rows]
        produce_and_wait([Outbound(topic=target, value=m, key=m["product_id"]) for m in messages],
                         timeout=max(settings.KAFKA_PRODUCE_TIMEOUT_SECONDS, 30.0))
        cursor.execute(f"UPDATE {_WINDOWS} SET final_published_at = now() WHERE id = ANY(%s::bigint[])",
                       [[row[0] for row in rows]])
    return len(rows)


def order_windows_tick(*, group: str, upstream: str | None = None,
                       progress: PartitionProgress | None = None) -> int:
    """The idle timer: record the member's progress (when the runtime's tick gives it),
    close what is due and publish the final windows. Returns windows published. Called
    on every batch and by the runtime's tick, also on a quiet stream."""
    if progress is not None:
        record_progress(group=group, progress=progress)
    order_windows_close(group=group, upstream=upstream)
    return order_windows_publish_final()


@dataclass(frozen=True)
class LateRelease:
    windows: int  # windows whose totals changed
    orders: int  # late orders released into them
    revenue: Decimal
    published: bool  # the corrected windows reached product-metrics (else the consumer publishes them)


def order_windows_release_late(*, windows: Sequence[ProductWindow], by: Any) -> LateRelease:
    """Release the held late orders of `windows` into their totals: an audited correction.

    Exactly once: an order already released is not added again, so releasing
    twice changes nothing. Each changed window gets an admin-log entry by `by` (its
    history), the release one console audit entry (the audit log), and each window
    is published again as final with its new totals (after the commit; if the
    broker is away, the consumer's next batch or tick publishes it)."""
    ids = [w.pk for w in windows]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_RELEASE_SQL, {"ids": ids, "by": by.pk})
        changed = cursor.fetchall()
        by_id = {w.pk: w for w in windows}
        for window_id, n, revenue, count, total in changed:
            window = by_id[window_id]
            LogEntry.objects.log_actions(
                user_id=by.pk, queryset=[window], action_flag=CHANGE, single_object=True,
                change_message=(f"Released {n} late order(s), revenue {revenue}, into this final window: "
                                f"now {count} orders, {total} revenue (republished as final)"),
            )
        if changed:
            audit_record(by=by, action="late_orders_release", target="order-windows:" + ",".join(
                str(row[0]) for row in changed[:20]), outcome="succeeded", detail={
                "windows": [{"id": w_id, "product_id": by_id[w_id].product_id,
                             "window_start": by_id[w_id].window_start.isoformat(), "released": n,
                             "revenue": str(revenue), "count": count, "total": str(total)}
                            for w_id, n, revenue, count, total in changed]})
    released = [row[0] for row in changed]
    published = True
    if released:
        try:
            with transaction.atomic():
                order_windows_publish_final(ids=released)
        except (DeliveryError, KafkaException):
            published = False
    return LateRelease(windows=len(changed), orders=sum(row[1] for row in changed),
                       revenue=sum((row[2] for row in changed), Decimal("0")), published=published)


def order_windows_rebuild(*, product_id: str | None = None) -> int:
    """Recompute windows (all, or one product's) from the stored orders. Returns rows upserted."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_REBUILD_SQL, [settings.ORDERS_WINDOW_SECONDS, product_id, product_id])
        return cursor.rowcount
