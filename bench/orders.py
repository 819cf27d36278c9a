"""Benchmark: orders -> `orders` -> processed-orders -> `order_windows` -> windows in PostgreSQL.

Produces N orders to a fresh set of topics, then measures in the same run:

* baseline: a plain confluent-kafka consumer reading the same `orders` topic
  from the beginning (no decoding, no database): the raw consume rate;
* end to end: the two real consumer processes (`manage.py run_consumer orders`
  and `run_consumer order_windows`) until every order is counted in its
  window in PostgreSQL (validated, enriched, re-published, stored once,
  windowed, window published to product-metrics, offsets committed).

Usage (uses the database and broker of .env; cleans up after itself):

    .venv/bin/python bench/orders.py --orders 200000
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

import django  # noqa: E402

django.setup()

from confluent_kafka import Consumer  # noqa: E402
from confluent_kafka.admin import NewTopic  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db.models import F, Sum  # noqa: E402

from streams.kafka.client import client_config  # noqa: E402
from streams.kafka.producer import Outbound, produce, producer_config  # noqa: E402
from streams.kafka.topics import admin_client  # noqa: E402
from streams.models import ProcessedOrder, Product, ProductWindow  # noqa: E402
from streams.orders.demo import order_events  # noqa: E402

LOGICAL = ("orders", "processed_orders", "product_metrics", "orders_dlq")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200_000, help="Orders to produce (default 200000).")
    parser.add_argument("--partitions", type=int, default=3, help="Partitions per bench topic (default 3).")
    parser.add_argument("--batch-size", type=int, default=settings.CONSUMER_BATCH_SIZE,
                        help="Consumer batch size (default CONSUMER_BATCH_SIZE).")
    parser.add_argument("--timeout", type=float, default=600, help="Give up after this many seconds.")
    args = parser.parse_args()

    suffix = uuid.uuid4().hex[:6]
    topics = {logical: f"bench-{suffix}-{settings.KAFKA_TOPICS[logical]['name']}" for logical in LOGICAL}
    admin = admin_client()
    for future in admin.create_topics(
        [NewTopic(name, num_partitions=args.partitions, replication_factor=settings.KAFKA_REPLICATION_FACTOR)
         for name in topics.values()]
    ).values():
        future.result()
    # Products of this run only, so the bench never touches real windows.
    product_ids = [f"bench-{suffix}-{i}" for i in range(1, 6)]
    Product.objects.bulk_create([
        Product(product_id=pid, name=f"Bench product {i}", category="Bench", price=10, currency="EUR")
        for i, pid in enumerate(product_ids, 1)
    ])
    procs: list[subprocess.Popen] = []
    try:
        n = args.orders
        events = order_events(n, products=5, spread_seconds=300)
        for e in events:
            e["product_id"] = f"bench-{suffix}-{e['product_id'].split('-')[1]}"
        from confluent_kafka import Producer

        producer = Producer(producer_config(**{"linger.ms": 20, "batch.size": 1_000_000}))
        started = time.monotonic()
        for e in events:
            produce(Outbound(topics["orders"], e, key=e["product_id"]), producer=producer)
        producer.flush(120)
        produce_s = time.monotonic() - started
        print(f"produced {n} orders in {produce_s:.1f}s ({n / produce_s:,.0f}/s)")

        # Baseline: a plain consumer reading the same topic.
        consumer = Consumer(client_config(**{
            "group.id": f"bench-raw-{suffix}", "auto.offset.reset": "earliest", "enable.auto.commit": False,
        }))
        consumer.subscribe([topics["orders"]])
        seen, first = 0, None
        deadline = time.monotonic() + args.timeout
        values = []
        while seen < n and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=1.0):
                if msg.error() is None:
                    first = first or time.monotonic()
                    seen += 1
                    values.append(msg.value())
        raw_s = time.monotonic() - (first or time.monotonic())
        consumer.close()
        raw_rate = seen / raw_s if raw_s else 0.0
        print(f"baseline raw consume: {seen} messages in {raw_s:.2f}s ({raw_rate:,.0f}/s, from first message)")
        started = time.monotonic()
        for value in values:
            json.loads(value)
        json_rate = len(values) / (raw_s + time.monotonic() - started)
        print(f"baseline raw consume + json.loads: {json_rate:,.0f}/s")

        # End to end through the real consumer processes.
        env = dict(os.environ)
        env.update({f"KAFKA_TOPIC_{logical.upper()}": name for logical, name in topics.items()})
        env["CONSUMER_GROUP_PREFIX"] = f"bench-{suffix}"
        env["LOG_LEVEL"] = "WARNING"
        started = time.monotonic()
        for name in ("orders", "order_windows"):
            procs.append(subprocess.Popen(
                [sys.executable, str(ROOT / "manage.py"), "run_consumer", name, "--batch-size", str(args.batch_size)],
                cwd=ROOT, env=env,
            ))
        windows = ProductWindow.objects.filter(product_id__in=product_ids)
        counted, first_row = 0, None
        deadline = time.monotonic() + args.timeout
        while counted < n and time.monotonic() < deadline:
            time.sleep(0.2)
            # Late orders (event time, docs/streams.md) are counted on their window, not in its totals.
            counted = windows.aggregate(total=Sum(F("order_count") + F("late_count")))["total"] or 0
            if counted and first_row is None:
                first_row = time.monotonic()
        e2e_s = time.monotonic() - started
        steady_s = time.monotonic() - (first_row or started)
        if counted != n:
            print(f"INCOMPLETE: {counted} of {n} orders counted after {e2e_s:.0f}s")
        e2e_rate = counted / e2e_s
        steady_rate = counted / steady_s if steady_s else 0.0
        revenue = windows.aggregate(total=Sum(F("total_revenue") + F("late_revenue")))["total"]
        expected = sum(round(e["amount"] * 100) for e in events) / 100
        print(f"end to end: {counted} orders windowed in {e2e_s:.1f}s = {e2e_rate:,.0f} orders/s "
              f"(incl. process start); {steady_rate:,.0f} orders/s from the first window row")
        print(f"exact: revenue {revenue} vs produced {expected:.2f} -> {'OK' if float(revenue) == expected else 'MISMATCH'}")
        if raw_rate:
            print(f"ratio end-to-end / raw consume: {e2e_rate / raw_rate:.4f} (steady {steady_rate / raw_rate:.4f}); "
                  f"/ consume+json: {e2e_rate / json_rate:.3f} (steady {steady_rate / json_rate:.3f})")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        ProductWindow.objects.filter(product_id__in=product_ids).delete()
        ProcessedOrder.objects.filter(product_id__in=product_ids).delete()
        Product.objects.filter(product_id__in=product_ids).delete()
        admin.delete_topics(list(topics.values()), operation_timeout=10)


if __name__ == "__main__":
    main()
