"""Real-time order analytics (seed 002).

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
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from .kafka.decoding import FieldChecker, decode_json_object, iso, parse_timestamp
from .kafka.producer import Outbound
from .kafka.registry import BatchOutcome, Envelope, MessageRejected, Rejection
from .kafka.topics import topic_name
from .models import ProcessedOrder, Product, ProductWindow

# Event times outside 2000-01-01 .. 2100-01-01 are certainly wrong.
MAX_AMOUNT = Decimal("999999999999.99")

DEMO_PRODUCTS = [
    ("prod-1", "Laptop", "Computers", Decimal("1299.00")),
    ("prod-2", "Phone", "Mobile", Decimal("799.00")),
    ("prod-3", "Tablet", "Mobile", Decimal("499.00")),
    ("prod-4", "Monitor", "Displays", Decimal("249.00")),
    ("prod-5", "Keyboard", "Accessories", Decimal("59.00")),
]


# ------------------------------------------------------------------ decoding


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


def decode_order(envelope: Envelope) -> Order:
    return validate_order(decode_json_object(envelope.raw))


# ------------------------------------------------------------ orders consumer


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


def _product_rejection(envelope: Envelope, product_id: str, reason: str, rule: str) -> Rejection:
    return Rejection(
        envelope=envelope,
        reason=reason,
        errors=[{"field": "product_id", "rule": rule, "message": reason, "value": repr(product_id)[:200]}],
    )


def handle_orders(envelopes: Sequence[Envelope]) -> BatchOutcome:
    """Validate against the catalog (one query per batch) and enrich."""
    product_ids = {e.value.product_id for e in envelopes}
    catalog = {
        row[0]: row
        for row in Product.objects.filter(product_id__in=product_ids).values_list(
            "product_id", "name", "category", "deleted_at"
        )
    }
    now = timezone.now()
    target = topic_name("processed_orders")
    outcome = BatchOutcome()
    for envelope in envelopes:
        order: Order = envelope.value
        entry = catalog.get(order.product_id)
        if entry is None:
            outcome.rejected.append(_product_rejection(
                envelope, order.product_id, f"unknown product {order.product_id!r}: not in the catalog",
                "known_product",
            ))
            continue
        _pid, name, category, deleted_at = entry
        if deleted_at is not None:
            outcome.rejected.append(_product_rejection(
                envelope, order.product_id,
                f"product {order.product_id!r} was deleted from the catalog at {iso(deleted_at)}",
                "active_product",
            ))
            continue
        outcome.outbound.append(Outbound(
            topic=target,
            value=enrich_order(order, product_name=name, category=category, processed_at=now),
            key=order.product_id,
        ))
    outcome.applied = len(outcome.outbound)
    return outcome


# ----------------------------------------------------- order_windows consumer


@dataclass(frozen=True)
class ProcessedOrderIn:
    order: Order
    product_name: str
    category: str
    processed_at: datetime


def decode_processed_order(envelope: Envelope) -> ProcessedOrderIn:
    data = decode_json_object(envelope.raw)
    check = _Checker(data)
    name = check.identifier("product_name", max_length=255)
    category = check.string("category", max_length=120, required=False) or ""
    processed_at = data.get("processed_at")
    try:
        order = validate_order(data)
    except MessageRejected as exc:
        check.errors.extend(exc.errors)
    check.done()
    when = timezone.now()
    if processed_at is not None:
        try:
            when = parse_timestamp(processed_at)
        except ValueError:
            pass  # informational only; the window does not depend on it
    return ProcessedOrderIn(order=order, product_name=name or "", category=category, processed_at=when)


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


def handle_order_windows(envelopes: Sequence[Envelope]) -> BatchOutcome:
    stored, windows = order_windows_apply(orders=[e.value for e in envelopes])
    target = topic_name("product_metrics")
    return BatchOutcome(
        outbound=[Outbound(topic=target, value=w, key=w["product_id"]) for w in windows],
        applied=stored,
    )


def order_windows_rebuild(*, product_id: str | None = None) -> int:
    """Recompute windows (all, or one product's) from the stored orders. Returns rows upserted."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_REBUILD_SQL, [settings.ORDERS_WINDOW_SECONDS, product_id, product_id])
        return cursor.rowcount


# -------------------------------------------------------------- demo catalog


def catalog_seed_demo(*, count: int = 5) -> int:
    """Upsert the seed's demo products (prod-1 Laptop .. prod-5 Keyboard, then
    "Product N" up to `count`), undeleting them. Idempotent. Returns how many."""
    rows = list(DEMO_PRODUCTS[:count]) + [
        (f"prod-{i}", f"Product {i}", "Other", Decimal("19.99")) for i in range(len(DEMO_PRODUCTS) + 1, count + 1)
    ]
    Product.objects.bulk_create(
        [
            Product(product_id=pid, name=name, category=category, price=price, currency="EUR",
                    stock_quantity=100, deleted_at=None)
            for pid, name, category, price in rows
        ],
        update_conflicts=True,
        unique_fields=["product_id"],
        update_fields=["name", "category", "deleted_at", "updated_at"],
    )
    return len(rows)


# -------------------------------------------------------------- load generator


def order_events(
    n: int,
    *,
    products: int = 5,
    invalid_share: float = 0.0,
    now: datetime | None = None,
    spread_seconds: float = 0.0,
    rng: random.Random | None = None,
) -> list[dict[str, Any]]:
    """`n` realistic orders (seed 002 shape) for prod-1..prod-`products`.

    About `invalid_share` of them are invalid in one of the ways the pipeline
    must catch (unknown product, amount <= 0, a missing or empty id, a bad
    timestamp). Timestamps are `now` minus up to `spread_seconds`.
    """
    rng = rng or random.Random()
    now = now or timezone.now()
    events = []
    for _ in range(n):
        moment = now - timedelta(seconds=rng.uniform(0, spread_seconds)) if spread_seconds else now
        event: dict[str, Any] = {
            "order_id": f"order-{uuid.uuid4().hex[:20]}",
            "user_id": f"user-{rng.randint(1, 100)}",
            "product_id": f"prod-{rng.randint(1, products)}",
            "amount": round(rng.uniform(10, 500), 2),
            "timestamp": moment.astimezone(UTC).isoformat(),
        }
        if invalid_share and rng.random() < invalid_share:
            kind = rng.choice(["unknown_product", "zero_amount", "negative_amount", "missing_id",
                               "empty_user", "bad_timestamp"])
            if kind == "unknown_product":
                event["product_id"] = "prod-unknown"
            elif kind == "zero_amount":
                event["amount"] = 0
            elif kind == "negative_amount":
                event["amount"] = -event["amount"]
            elif kind == "missing_id":
                del event["order_id"]
            elif kind == "empty_user":
                event["user_id"] = ""
            else:
                event["timestamp"] = "yesterday"
        events.append(event)
    return events
