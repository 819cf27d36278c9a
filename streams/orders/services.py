"""Real-time order analytics (seed 002): the order rules, enrichment and the windows.

Two consumers:

* `orders` reads `orders`, validates each order (ids, amount, timestamp;
  product known and not deleted, looked up once per batch), enriches it with
  the product's name and category and publishes it to `processed-orders`
  keyed by product. Rejected orders go to `orders-dlq` and quarantine.
* `order_windows` reads `processed-orders` and keeps 1-minute tumbling
  windows per product. Exactly-once effects come from one SQL statement per
  batch: the orders are inserted idempotently (unique `order_id`, ON CONFLICT
  DO NOTHING RETURNING) and only the rows that statement really inserted are
  added to their windows. A replayed batch or a re-driven duplicate inserts
  nothing, so it adds nothing. Each window touched by the batch is then
  published to `product-metrics` with its absolute (not incremental) values,
  so a republished window is harmless.

This module holds what the two consumers (consumers.py) do to the data; the
consumers hold only the Kafka side. Callers: consumers.py, the admin
(rebuild), tests. Imports the platform's field rules and this package's models.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from streams.kafka.decoding import FieldChecker, iso

from .models import ProcessedOrder, ProductWindow

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


@dataclass(frozen=True)
class Order:
    order_id: str
    user_id: str
    product_id: str
    amount: Decimal
    timestamp: datetime


def validate_order(data: dict[str, Any]) -> Order:
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
    """The `processed-orders` message: the order plus catalog data and processed_at."""
    return {
        "order_id": order.order_id,
        "user_id": order.user_id,
        "product_id": order.product_id,
        "amount": float(order.amount),
        "timestamp": iso(order.timestamp),
        "product_name": product_name,
        "category": category,
        "processed_at": iso(processed_at),
    }


@dataclass(frozen=True)
class ProcessedOrderIn:
    order: Order
    product_name: str
    category: str
    processed_at: datetime


def window_start_of(moment: datetime, *, window_seconds: int) -> datetime:
    epoch = int(moment.timestamp() // window_seconds) * window_seconds
    return datetime.fromtimestamp(epoch, tz=UTC)


_ORDERS = ProcessedOrder._meta.db_table
_WINDOWS = ProductWindow._meta.db_table

# Insert the batch's orders idempotently and add exactly the inserted ones to
# their windows, in one statement (so in one snapshot and one transaction).
_APPLY_SQL = f"""
WITH incoming AS (
    SELECT * FROM json_to_recordset(%s::json) AS t(
        order_id text, user_id text, product_id text, product_name text, category text,
        amount numeric, ordered_at timestamptz, window_start timestamptz, processed_at timestamptz)
), inserted AS (
    INSERT INTO {_ORDERS} AS o
        (order_id, user_id, product_id, product_name, category,
         amount, ordered_at, window_start, processed_at, stored_at)
    SELECT order_id, user_id, product_id, product_name, category,
           amount, ordered_at, window_start, processed_at, now()
    FROM incoming
    ON CONFLICT (order_id) DO NOTHING
    RETURNING o.product_id, o.product_name, o.window_start, o.amount
), deltas AS (
    SELECT product_id, max(product_name) AS product_name, window_start,
           count(*) AS n, sum(amount) AS revenue
    FROM inserted GROUP BY product_id, window_start
)
INSERT INTO {_WINDOWS} AS w
    (product_id, product_name, window_start, window_end,
     order_count, total_revenue, avg_order_value, updated_at)
SELECT product_id, product_name, window_start, window_start + make_interval(secs => %s),
       n, revenue, round(revenue / n, 2), now()
FROM deltas
ORDER BY product_id, window_start
ON CONFLICT (product_id, window_start) DO UPDATE SET
    product_name = EXCLUDED.product_name,
    order_count = w.order_count + EXCLUDED.order_count,
    total_revenue = w.total_revenue + EXCLUDED.total_revenue,
    avg_order_value = round((w.total_revenue + EXCLUDED.total_revenue)
                            / (w.order_count + EXCLUDED.order_count), 2),
    updated_at = now()
"""

_TOUCHED_SQL = f"""
SELECT w.product_id, w.product_name, w.window_start, w.window_end,
       w.order_count, w.total_revenue, w.avg_order_value
FROM {_WINDOWS} w
JOIN unnest(%s::text[], %s::timestamptz[]) AS t(product_id, window_start)
  USING (product_id, window_start)
ORDER BY w.window_start, w.product_id
"""

# Rebuild windows from the stored orders (repairs, a changed window size).
_REBUILD_SQL = f"""
INSERT INTO {_WINDOWS} AS w
    (product_id, product_name, window_start, window_end,
     order_count, total_revenue, avg_order_value, updated_at)
SELECT product_id, max(product_name), window_start, window_start + make_interval(secs => %s),
       count(*), sum(amount), round(sum(amount) / count(*), 2), now()
FROM {_ORDERS}
WHERE (%s::text IS NULL OR product_id = %s::text)
GROUP BY product_id, window_start
ON CONFLICT (product_id, window_start) DO UPDATE SET
    product_name = EXCLUDED.product_name,
    window_end = EXCLUDED.window_end,
    order_count = EXCLUDED.order_count,
    total_revenue = EXCLUDED.total_revenue,
    avg_order_value = EXCLUDED.avg_order_value,
    updated_at = now()
"""


def window_message(row: Sequence[Any]) -> dict[str, Any]:
    """The seed's `product-metrics` format: epoch-second bounds, rounded money."""
    product_id, product_name, start, end, count, revenue, avg = row
    return {
        "window_start": int(start.timestamp()),
        "window_end": int(end.timestamp()),
        "product_id": product_id,
        "product_name": product_name,
        "order_count": int(count),
        "total_revenue": float(revenue),
        "avg_order_value": float(avg),
    }


def order_windows_apply(*, orders: Sequence[ProcessedOrderIn]) -> tuple[int, list[dict[str, Any]]]:
    """Store orders once each and add the new ones to their windows.

    Returns (orders newly stored, current state of every window the batch touched).
    Must run inside the caller's transaction (the consumer's batch transaction).
    """
    window_seconds = settings.ORDERS_WINDOW_SECONDS
    unique: dict[str, ProcessedOrderIn] = {}
    for item in orders:
        unique.setdefault(item.order.order_id, item)
    # A stable order of keys keeps concurrent writers (two groups, a rebalance)
    # from locking the same unique keys in opposite orders and deadlocking.
    rows = sorted(unique.values(), key=lambda r: r.order.order_id)
    starts = [window_start_of(r.order.timestamp, window_seconds=window_seconds) for r in rows]
    # One JSON document is far cheaper to send than nine adapted arrays.
    payload = json.dumps([
        {
            "order_id": r.order.order_id, "user_id": r.order.user_id, "product_id": r.order.product_id,
            "product_name": r.product_name, "category": r.category, "amount": str(r.order.amount),
            "ordered_at": r.order.timestamp.isoformat(), "window_start": start.isoformat(),
            "processed_at": r.processed_at.isoformat(),
        }
        for r, start in zip(rows, starts)
    ])
    touched = sorted({(r.order.product_id, s) for r, s in zip(rows, starts)})
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {_ORDERS} WHERE order_id = ANY(%s::text[])", [list(unique)]
        )
        already = cursor.fetchone()[0]
        cursor.execute(_APPLY_SQL, [payload, window_seconds])
        cursor.execute(_TOUCHED_SQL, [[p for p, _ in touched], [s for _, s in touched]])
        windows = [window_message(row) for row in cursor.fetchall()]
    return len(rows) - already, windows


def order_windows_rebuild(*, product_id: str | None = None) -> int:
    """Recompute windows (all, or one product's) from the stored orders. Returns rows upserted."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_REBUILD_SQL, [settings.ORDERS_WINDOW_SECONDS, product_id, product_id])
        return cursor.rowcount
