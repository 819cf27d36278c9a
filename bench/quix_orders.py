"""The seed-002 order job written with Quix Streams 3.28: the baseline of `make bench-orders`.

Runs in its own virtualenv (.run/bench-quix/, requirements-bench.txt): Quix
Streams needs confluent-kafka < 2.13 and the console pins 2.16. Started by
bench/orders.py as a subprocess; it is not part of the product.

The job, as a Quix user would write it:

* read `--input` (the seed's orders, keyed by product_id), event time taken
  from the order's `timestamp`;
* drop orders that break the console's field rules (ids, amount > 0 with at
  most 2 decimals, a timestamp between 2000 and 2100);
* enrich from the same catalog table (`streams_product`) with Quix's
  PostgreSQL lookup join (cached per product for 60 s, like the console's one
  catalog query per batch) and drop unknown or deleted products;
* 1-minute tumbling windows per product (the message key) with `--grace-ms`,
  emitted once each with `.final()`; a window closes when the partition's event
  time passes its end plus the grace (closing_strategy="partition");
* publish each final window to `--output` in the seed's product-metrics shape;
* processing_guarantee="exactly-once" (transactional producer, offsets in the
  transaction; results are visible to read_committed readers at each commit).

Revenue is summed in integer cents, so the totals are exact.
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlparse

from quixstreams import Application
from quixstreams.dataframe.joins.lookups.postgresql import PostgresLookup
from quixstreams.dataframe.windows.aggregations import Count, Latest, Sum

MAX_AMOUNT = Decimal("999999999999.99")
EARLIEST, LATEST = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)


def parse_event_time(raw: Any) -> datetime | None:
    """ISO 8601 (no zone means UTC) or epoch seconds, within 2000..2100; None otherwise."""
    try:
        if isinstance(raw, bool):
            return None
        if isinstance(raw, (int, float)):
            moment = datetime.fromtimestamp(raw, tz=UTC)
        elif isinstance(raw, str) and raw.strip():
            moment = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
        else:
            return None
    except (ValueError, OverflowError, OSError):
        return None
    return moment if EARLIEST <= moment < LATEST else None


def amount_cents(raw: Any) -> int | None:
    """The amount in cents if it is a finite number > 0 with at most 2 decimals."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        return None
    try:
        amount = Decimal(repr(raw) if isinstance(raw, float) else str(raw).strip())
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount <= 0 or amount > MAX_AMOUNT:
        return None
    cents = amount * 100
    return int(cents) if cents == cents.to_integral_value() else None


def event_time_ms(value: Any, headers: Any, timestamp: int, timestamp_type: Any) -> int:
    """Windows run on the order's own time; an unparsable one is dropped by the filter later."""
    moment = parse_event_time(value.get("timestamp")) if isinstance(value, dict) else None
    return int(moment.timestamp() * 1000) if moment else timestamp


def has_valid_fields(order: Any) -> bool:
    if not isinstance(order, dict):
        return False
    ids_ok = all(isinstance(order.get(f), str) and order[f].strip() for f in ("order_id", "user_id", "product_id"))
    return ids_ok and amount_cents(order.get("amount")) is not None \
        and parse_event_time(order.get("timestamp")) is not None


def in_catalog(order: dict[str, Any]) -> bool:
    product = order.get("product")
    return bool(product) and product.get("deleted_at") is None


def enriched(order: dict[str, Any]) -> dict[str, Any]:
    product = order.pop("product")
    return {**order, "product_name": product["name"], "category": product["category"],
            "amount_cents": amount_cents(order["amount"]),
            "processed_at": datetime.now(UTC).isoformat().replace("+00:00", "Z")}


def window_message(window: dict[str, Any], key: Any, timestamp: int, headers: Any) -> dict[str, Any]:
    """The seed's product-metrics shape (epoch-second bounds, money rounded to cents)."""
    count, cents = window["order_count"], window["revenue_cents"]
    return {
        "window_start": window["start"] // 1000,
        "window_end": window["end"] // 1000,
        "product_id": key.decode() if isinstance(key, bytes) else key,
        "product_name": window["product_name"],
        "order_count": count,
        "total_revenue": cents / 100,
        "avg_order_value": round(cents / count / 100, 2) if count else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True, help="Kafka bootstrap servers.")
    parser.add_argument("--input", required=True, help="Orders topic.")
    parser.add_argument("--output", required=True, help="Topic for the final windows.")
    parser.add_argument("--group", required=True, help="Consumer group (also names Quix's changelog topics).")
    parser.add_argument("--state-dir", required=True, help="RocksDB state directory.")
    parser.add_argument("--window-ms", type=int, default=60_000, help="Tumbling window length.")
    parser.add_argument("--grace-ms", type=int, default=0, help="Grace period of the windows.")
    parser.add_argument("--commit-interval", type=float, default=5.0, help="Quix commit interval (its default: 5 s).")
    args = parser.parse_args()

    db = urlparse(os.environ["DATABASE_URL"])
    catalog = PostgresLookup(host=db.hostname, port=db.port or 5432, dbname=db.path.lstrip("/"),
                             user=db.username, password=db.password)

    app = Application(
        broker_address=args.broker,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once",
        commit_interval=args.commit_interval,
        state_dir=args.state_dir,
        loglevel="WARNING",
    )
    orders = app.topic(args.input, key_deserializer="str", timestamp_extractor=event_time_ms)
    metrics = app.topic(args.output, key_serializer="str")

    sdf = app.dataframe(orders)
    sdf = sdf.filter(has_valid_fields)
    sdf = sdf.join_lookup(
        catalog,
        fields={"product": catalog.field(table="streams_product", columns=["name", "category", "deleted_at"],
                                         on="product_id", ttl=60.0)},
        on="product_id",
    )
    sdf = sdf.filter(in_catalog).apply(enriched)
    sdf = (
        sdf.tumbling_window(duration_ms=timedelta(milliseconds=args.window_ms), grace_ms=args.grace_ms)
        .agg(order_count=Count(), revenue_cents=Sum("amount_cents"), product_name=Latest("product_name"))
        .final(closing_strategy="partition")
    )
    sdf = sdf.apply(window_message, metadata=True)
    sdf.to_topic(metrics)
    app.run()


if __name__ == "__main__":
    main()
