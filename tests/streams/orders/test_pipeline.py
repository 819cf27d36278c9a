"""Order analytics (seed 002) against the real broker, database and consumer processes."""

from __future__ import annotations

import json
import random
import signal
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from quarantine.models import QuarantineRecord
from streams.kafka.producer import Outbound, produce_and_wait
from streams.models import ProcessedOrder, Product, ProductWindow
from streams.orders.demo import order_events
from tests.conftest import wait_until
from tests.streams.conftest import consumed

T0 = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)


def expected_windows(events) -> dict[tuple[str, int], tuple[int, Decimal]]:
    """An independent sum: (product, window start epoch) -> (count, revenue)."""
    totals: dict[tuple[str, int], list] = defaultdict(lambda: [0, Decimal("0")])
    seen = set()
    for e in events:
        if e["order_id"] in seen:
            continue
        seen.add(e["order_id"])
        moment = datetime.fromisoformat(e["timestamp"])
        key = (e["product_id"], int(moment.timestamp()) // 60 * 60)
        totals[key][0] += 1
        totals[key][1] += Decimal(str(e["amount"]))
    return {k: (c, r) for k, (c, r) in totals.items()}


def stored_windows() -> dict[tuple[str, int], tuple[int, Decimal]]:
    return {
        (w.product_id, int(w.window_start.timestamp())): (w.order_count, w.total_revenue)
        for w in ProductWindow.objects.all()
    }


def orders_out(kafka, events) -> list[Outbound]:
    return [Outbound(kafka.name("orders"), e, key=e["product_id"]) for e in events]


def test_valid_orders_reach_processed_orders_and_windows_with_exact_totals(kafka, processes, catalog):
    rng = random.Random(2)
    events = order_events(300, now=T0 + timedelta(seconds=150), spread_seconds=150, rng=rng)
    produce_and_wait(orders_out(kafka, events))
    processes.consumer("orders")
    processes.consumer("order_windows")
    wait_until(lambda: ProcessedOrder.objects.count() == 300, message="300 stored orders")
    expected = expected_windows(events)
    wait_until(lambda: stored_windows() == expected, message="windows equal to the independent sum")

    # A late order lands in its (old) window.
    late = order_events(1, now=T0 + timedelta(seconds=5), rng=rng)[0]
    late["product_id"] = "prod-3"
    produce_and_wait(orders_out(kafka, [late]))
    expected = expected_windows(events + [late])
    wait_until(lambda: stored_windows() == expected, message="the late order in its window")

    processed = [json.loads(m.value()) for m in kafka.read("processed_orders", expected=301)]
    assert len(processed) == 301
    sample = next(p for p in processed if p["order_id"] == late["order_id"])
    assert sample["product_name"] == "Tablet" and sample["category"] == "Mobile"
    assert sample["amount"] == late["amount"] and sample["processed_at"].endswith("Z")

    window = ProductWindow.objects.get(product_id="prod-3", window_start=T0)
    assert window.window_end == T0 + timedelta(seconds=60)
    assert window.avg_order_value == (window.total_revenue / window.order_count).quantize(Decimal("0.01"))
    metrics = [json.loads(m.value()) for m in kafka.read("product_metrics", expected=1)]
    assert metrics and set(metrics[0]) == {"window_start", "window_end", "product_id", "product_name",
                                           "order_count", "total_revenue", "avg_order_value"}
    # The newest message per window carries the window's final state (published after the commit).
    def latest_published():
        latest = {}
        for m in kafka.read("product_metrics", expected=kafka.end_offsets("product_metrics")):
            value = json.loads(m.value())
            latest[(value["product_id"], value["window_start"])] = value
        return latest.get(("prod-3", int(T0.timestamp())))

    final = wait_until(lambda: (v := latest_published()) and v["order_count"] == window.order_count and v,
                       message="the final state of the late order's window on product-metrics")
    assert Decimal(str(final["total_revenue"])) == window.total_revenue
    assert Decimal(str(final["avg_order_value"])) == window.avg_order_value


def test_invalid_orders_go_to_orders_dlq_and_quarantine_with_reason(kafka, processes, catalog):
    Product.objects.filter(product_id="prod-5").update(deleted_at=timezone.now())
    good = {**order_events(1, now=T0)[0], "product_id": "prod-1"}
    topic = kafka.name("orders")
    bad = {
        "unknown": {**good, "order_id": "o-unknown", "product_id": "prod-404"},
        "zero": {**good, "order_id": "o-zero", "amount": 0},
        "negative": {**good, "order_id": "o-negative", "amount": -12.5},
        "missing": {k: v for k, v in good.items() if k != "order_id"},
        "empty_user": {**good, "order_id": "o-empty", "user_id": ""},
        "deleted": {**good, "order_id": "o-deleted", "product_id": "prod-5"},
        "timestamp": {**good, "order_id": "o-time", "timestamp": "not a time"},
    }
    produce_and_wait([Outbound(topic, good)] + [Outbound(topic, v) for v in bad.values()]
                     + [Outbound(topic, b"{oops")])
    processes.consumer("orders")
    wait_until(lambda: QuarantineRecord.objects.count() == 8, message="eight quarantined orders")
    assert len(kafka.read("processed_orders", expected=1)) == 1

    reasons = {json.loads(bytes(r.payload)).get("order_id", "missing") if r.reason[:7] != "payload"
               else "not-json": r for r in QuarantineRecord.objects.all()}
    assert reasons["o-unknown"].reason == "unknown product 'prod-404': not in the catalog"
    assert reasons["o-zero"].errors[0]["field"] == "amount" and reasons["o-zero"].errors[0]["rule"] == "positive"
    assert reasons["o-negative"].reason == "invalid fields: amount"
    assert reasons["missing"].reason == "invalid fields: order_id"
    assert reasons["o-empty"].reason == "invalid fields: user_id"
    assert "was deleted from the catalog" in reasons["o-deleted"].reason
    assert reasons["o-time"].errors[0]["rule"] == "timestamp"
    assert reasons["not-json"].reason.startswith("payload is not JSON")
    assert all(r.consumer == "orders" and r.topic == topic for r in reasons.values())

    dead = kafka.read("orders_dlq", expected=8)
    assert len(dead) == 8
    dead_reasons = {dict(m.headers())["x-dlq-reason"].decode() for m in dead}
    assert "unknown product 'prod-404': not in the catalog" in dead_reasons


def test_sigkill_of_order_windows_mid_stream_never_double_counts(kafka, processes, catalog):
    rng = random.Random(7)
    events = order_events(12_000, now=T0 + timedelta(minutes=10), spread_seconds=600, rng=rng)
    names = dict(Product.objects.values_list("product_id", "name"))
    processed = [
        Outbound(kafka.name("processed_orders"),
                 {**e, "product_name": names[e["product_id"]], "category": "", "processed_at": e["timestamp"]},
                 key=e["product_id"])
        for e in events
    ]
    # Re-driven duplicates of 500 orders, later in the stream.
    processed += processed[:500]
    produce_and_wait(processed, timeout=60)
    # A short session lets the group hand the killed member's partitions over quickly.
    consumer = processes.consumer("order_windows", "--batch-size", "100",
                                  KAFKA_CLIENT_CONFIG="session.timeout.ms=6000")
    wait_until(lambda: ProcessedOrder.objects.count() >= 1500, message="the first batches")
    consumer.send_signal(signal.SIGKILL)
    consumer.wait(timeout=10)
    assert ProcessedOrder.objects.count() < 12_000, "finished before the kill; produce more"

    processes.consumer("order_windows", "--batch-size", "500")
    expected = expected_windows(events)
    wait_until(lambda: stored_windows() == expected, timeout=120, message="exact windows after the restart")
    assert ProcessedOrder.objects.count() == 12_000

    # A whole replay from the start (a new consumer group) changes nothing.
    replay = processes.consumer("order_windows", "--batch-size", "2000",
                                CONSUMER_GROUP_PREFIX=kafka.group_prefix + "-replay")
    wait_until(lambda: consumed(processes, replay) >= 12_500, timeout=60,
               message="the replay to reach the end of the topic")
    assert stored_windows() == expected


def test_duplicate_order_id_is_counted_once(kafka, processes, catalog):
    order = order_events(1, now=T0)[0]
    order["product_id"] = "prod-1"
    produce_and_wait(orders_out(kafka, [order, order, dict(order, amount=999.99)]))
    processes.consumer("orders")
    windows = processes.consumer("order_windows")
    wait_until(lambda: consumed(processes, windows) >= 3, message="all three processed orders consumed")
    window = ProductWindow.objects.get(product_id="prod-1")
    assert window.order_count == 1
    assert window.total_revenue == Decimal(str(order["amount"]))
    assert ProcessedOrder.objects.get().amount == Decimal(str(order["amount"]))
