"""The order windows of seed 002: 1-minute tumbling windows per product, exactly once.

Exactly-once effects come from one SQL statement per batch: the orders are
inserted idempotently (unique `order_id`, ON CONFLICT DO NOTHING RETURNING)
and only the rows that statement really inserted are added to their windows.
A replayed batch or a re-driven duplicate inserts nothing, so it adds nothing.
The same statement moves the group's watermark rows (watermark.py), and an
order whose window is final, or whose window end the watermark before the
batch had passed, is late: stored, counted on its window (`late_count`,
`late_revenue`), not added.

A window's life here: created and applied (`order_windows_apply`), closed when
the watermark or the idle rule says so (`order_windows_close`), its final
state selected for publishing (`order_windows_final_unpublished`) and marked
once the broker acknowledged it (`order_windows_mark_published`). What leaves
on `product-metrics` is `window_message`; it leaves through the consumer's
outcome (consumers.py), after the commit. The statements that must agree on
what "late" and "final" mean share watermark.py's definition.

Callers: consumers.py (the batch and the tick of `order_windows`), late.py
(the release republishes), tests.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from django.conf import settings
from django.db import connection

from streams.kafka.producer import Outbound
from streams.kafka.registry import PartitionProgress
from streams.kafka.topics import topic_name

from ..models import ProcessedOrder, ProductWindow
from .rules import ProcessedOrderIn
from .watermark import SEEN_SQL, WATERMARK_SQL, PartitionSeen, event_time_params, record_progress, seen_json

_ORDERS = ProcessedOrder._meta.db_table
# The batch's orders, staged by COPY in a temporary table of the session (emptied
# at commit) for the statements that apply them: COPY's text format costs the
# server a third of what parsing the same rows from one JSON literal did (30
# against 87 ms for 20,000 orders), and the rows are sent without the SQL lexer.
_STAGED = "order_windows_staged"
_STAGED_COLUMNS = ("order_id", "user_id", "product_id", "product_name", "category", "amount", "ordered_at",
                   "processed_at", "trace_id")
_STAGE_SQL = f"""
CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGED} (
    order_id text, user_id text, product_id text, product_name text, category text,
    amount numeric, ordered_at timestamptz, processed_at timestamptz, trace_id uuid
) ON COMMIT DELETE ROWS;
DELETE FROM {_STAGED}
"""
# An order's window (the start of the window its time falls in): date_bin's integer arithmetic in C
# (PostgreSQL 14+), where floor(extract(epoch ...)) went through numeric for every row.
_WINDOW_START_SQL = "date_bin(make_interval(secs => %(window)s), ordered_at, 'epoch'::timestamptz)"
_WINDOWS = ProductWindow._meta.db_table

# Insert the batch's orders idempotently and add exactly the inserted, on-time
# ones to their windows, in one statement (so in one snapshot, one transaction
# and one round trip), which returns the windows it changed (their new state)
# and how many orders it stored, and how many of them late. The window of an
# order is computed here from its time (_WINDOW_START_SQL). An order is late when its window is final, or when the
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
), mark AS ({WATERMARK_SQL}
), existing AS (
    SELECT w.product_id, w.window_start, w.final
    FROM {_WINDOWS} w
    WHERE (w.product_id, w.window_start) IN (SELECT product_id, window_start FROM incoming)
    ORDER BY w.product_id, w.window_start
    FOR UPDATE OF w
), inserted AS (
    INSERT INTO {_ORDERS} AS o
        (order_id, user_id, product_id, product_name, category,
         amount, ordered_at, window_start, processed_at, stored_at, late, trace_id)
    SELECT i.order_id, i.user_id, i.product_id, i.product_name, i.category,
           i.amount, i.ordered_at, i.window_start, i.processed_at, now(),
           coalesce(e.final, false)
           OR coalesce(i.window_start + make_interval(secs => %(window)s) <= mark.at, false),
           i.trace_id
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
), seen AS ({SEEN_SQL}), windows AS (
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
WITH mark AS ({WATERMARK_SQL}
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
RETURNING w.id, w.product_id, extract(epoch FROM w.window_start)::bigint
"""

_COLUMNS = "w.product_id, w.product_name, w.window_start, w.window_end, " \
           "w.order_count, w.total_revenue, w.avg_order_value, w.final"

# Final windows whose final state the broker has not acknowledged yet, with the
# version (`updated_at`) each was read at. Locked (SKIP LOCKED: another consumer
# or a release is selecting that one) until the caller's transaction commits;
# they are published after it, and marked by _MARK_PUBLISHED_SQL.
_UNPUBLISHED_SQL = f"""
SELECT w.id, w.updated_at, {_COLUMNS}
FROM {_WINDOWS} w
WHERE w.final AND w.final_published_at IS NULL AND (%(ids)s::bigint[] IS NULL OR w.id = ANY(%(ids)s::bigint[]))
ORDER BY w.window_start, w.product_id
LIMIT %(limit)s
FOR UPDATE OF w SKIP LOCKED
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


@dataclass(frozen=True)
class WindowsApplied:
    stored: int  # orders newly stored (on time and late)
    late: int  # of which late: stored and counted on a final window, not added
    open_windows: list[dict[str, Any]]  # current state of the windows the batch changed, still open


_COPY_SPECIALS = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_rows(rows: Sequence[ProcessedOrderIn], trace_id: str | None = None) -> str:
    """`rows` in COPY's text format (_STAGED_COLUMNS). The times are written by orjson
    in one call (RFC 3339, UTC, Z). Text fields are escaped only when the batch holds
    a backslash, tab or line break at all (the common case has none). A row without a
    trace id of its own takes `trace_id` (the batch's); the ids are hex, never escaped."""
    default = trace_id or r"\N"
    moments = orjson.dumps([t for r in rows for t in (r.order.timestamp, r.processed_at)],
                           option=orjson.OPT_UTC_Z).decode()[2:-2].split('","')
    def text(escape: bool) -> str:
        if escape:
            lines = ["\t".join((*(f.translate(_COPY_SPECIALS) for f in (
                         o.order_id, o.user_id, o.product_id, r.product_name, r.category)),
                         str(o.amount), moments[2 * i], moments[2 * i + 1], r.trace_id or default))
                     for i, r in enumerate(rows) for o in (r.order,)]
        else:
            lines = [f"{o.order_id}\t{o.user_id}\t{o.product_id}\t{r.product_name}\t{r.category}\t"
                     f"{o.amount}\t{moments[2 * i]}\t{moments[2 * i + 1]}\t{r.trace_id or default}"
                     for i, r in enumerate(rows) for o in (r.order,)]
        return "\n".join(lines) + "\n" if lines else ""
    plain = text(escape=False)
    if "\\" in plain or "\r" in plain or plain.count("\t") != 8 * len(rows) or plain.count("\n") != len(rows):
        return text(escape=True)
    return plain


def order_windows_apply(
    *, orders: Sequence[ProcessedOrderIn], group: str = "", seen: Sequence[PartitionSeen] = (),
    upstream: str | None = None, trace_id: str | None = None,
) -> WindowsApplied:
    """Store orders once each; add the new on-time ones to their windows, count the late ones.

    `group` is the consumer group whose watermark decides lateness, `seen` the
    batch's partitions, which move it. Returns the windows the batch changed
    that are still open (the final ones are selected by
    `order_windows_final_unpublished`). An order without a trace id of its own is
    stored with `trace_id` (the batch's). The orders are staged by COPY, their missing
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
    params = event_time_params(group, upstream)
    with connection.cursor() as cursor:
        cursor.execute(_STAGE_SQL)
        cursor.copy_expert(f"COPY {_STAGED} ({', '.join(_STAGED_COLUMNS)}) FROM STDIN", io.StringIO(_copy_rows(rows, trace_id)))
        cursor.execute(_CREATE_WINDOWS_SQL, {"window": window_seconds})
        created = {row[0] for row in cursor.fetchall()}
        cursor.execute(_APPLY_SQL, {**params, "seen": seen_json(seen)})
        result = cursor.fetchall()
        unfilled = created - {row[8] for row in result if row[0] is not None}
        if unfilled:
            cursor.execute(f"DELETE FROM {_WINDOWS} WHERE id = ANY(%s::bigint[])", [sorted(unfilled)])
    stored, late = (result[0][-2], result[0][-1]) if result else (0, 0)
    changed = sorted((row[:8] for row in result if row[0] is not None and not row[7]), key=lambda r: (r[2], r[0]))
    return WindowsApplied(stored=stored, late=late, open_windows=[window_message(row) for row in changed])


@dataclass(frozen=True)
class ClosedWindows:
    """The windows one close step made final: their ids, and their keys as
    window_message writes them (product_id, window_start epoch seconds)."""

    ids: list[int] = field(default_factory=list)
    keys: set[tuple[str, int]] = field(default_factory=set)


def order_windows_close(*, group: str, upstream: str | None = None) -> ClosedWindows:
    """Mark the windows that are due as final (the watermark of `group` passed their
    end, or the group and its `upstream` group are quiet and the wall clock passed end
    + grace + idle close), and return them. Inside the caller's transaction (a batch's
    or a tick's)."""
    with connection.cursor() as cursor:
        cursor.execute(_CLOSE_SQL, event_time_params(group, upstream))
        rows = cursor.fetchall()
    return ClosedWindows(ids=[row[0] for row in rows], keys={(product_id, int(start)) for _id, product_id, start in rows})


# Mark final windows published once the broker acknowledged them, each only if it
# is still the version that was selected (`updated_at`). One that changed meanwhile
# (a release or a rebuild committed between the selection and the ack) is left
# unpublished and its version moved: the message just acknowledged may be older
# than another process's publication of the new state, and may have landed after
# it, so neither may mark it; the next tick publishes the state it holds then,
# after both. (The moved version is later than any other: clock_timestamp, not the
# transaction's start.) A window published twice keeps its first mark.
_MARK_PUBLISHED_SQL = f"""
UPDATE {_WINDOWS} w SET
    final_published_at = CASE WHEN w.updated_at = p.updated_at THEN coalesce(w.final_published_at, now()) END,
    updated_at = CASE WHEN w.updated_at = p.updated_at THEN w.updated_at
                      ELSE greatest(clock_timestamp(), w.updated_at + interval '1 microsecond') END
FROM json_to_recordset(%(published)s::json) AS p(id bigint, updated_at timestamptz)
WHERE w.id = p.id
"""


@dataclass(frozen=True)
class FinalWindows:
    """Final windows to publish: their messages (window_message, `"final": true`) and
    the (id, version) each was read at, for `order_windows_mark_published`."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    versions: list[tuple[int, datetime]] = field(default_factory=list)


def order_windows_final_unpublished(*, ids: Sequence[int] | None = None, limit: int = 5000) -> FinalWindows:
    """The final windows whose final state the broker has not acknowledged (or only
    `ids`), locked SKIP LOCKED in the caller's transaction. The caller publishes them
    after its commit and then marks them (`order_windows_mark_published`): a crash in
    between publishes them once more, with the same content, and never loses one. A
    consumer of product-metrics keeps the newest message per window."""
    if ids is not None and not ids:
        return FinalWindows()
    with connection.cursor() as cursor:
        cursor.execute(_UNPUBLISHED_SQL, {"ids": list(ids) if ids is not None else None, "limit": limit})
        rows = cursor.fetchall()
    return FinalWindows(messages=[window_message(row[2:]) for row in rows],
                        versions=[(row[0], row[1]) for row in rows])


def order_windows_mark_published(*, versions: Sequence[tuple[int, datetime]]) -> None:
    """Mark final windows published, after the broker acknowledged them (an outcome's
    after_publish step); a window changed since it was read is left for the next tick
    (_MARK_PUBLISHED_SQL says why)."""
    if versions:
        with connection.cursor() as cursor:
            cursor.execute(_MARK_PUBLISHED_SQL, {"published": orjson.dumps(
                [{"id": window_id, "updated_at": at} for window_id, at in versions]).decode()})


def metrics_outbound(messages: Sequence[dict[str, Any]]) -> list[Outbound]:
    """Window messages as records of `product-metrics`, keyed by product (a window's
    messages stay in order on one partition)."""
    target = topic_name("product_metrics")
    return [Outbound(topic=target, value=m, key=m["product_id"]) for m in messages]


def order_windows_tick(*, group: str, upstream: str | None = None,
                       progress: PartitionProgress | None = None) -> FinalWindows:
    """The idle timer: record the member's progress (when the runtime's tick gives it),
    close what is due, and select every final window not yet published (those it just
    closed, and any a crash, a release or a rebuild left unpublished) for the caller to
    publish after the commit. Called by the runtime's tick, also on a quiet stream."""
    if progress is not None:
        record_progress(group=group, progress=progress)
    order_windows_close(group=group, upstream=upstream)
    return order_windows_final_unpublished()
