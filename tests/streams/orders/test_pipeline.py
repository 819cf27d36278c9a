"""Order analytics (seed 002) against the real broker, database and consumer processes."""

from __future__ import annotations

import json
import random
import signal
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from confluent_kafka import Producer
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.utils import timezone

from console.models import AuditEntry

from quarantine.models import QuarantineRecord
from streams.kafka.heartbeat import consumer_health
from streams.kafka.models import ConsumerHeartbeat
from streams.kafka.producer import Outbound, produce_and_wait, producer_config
from streams.models import ProcessedOrder, Product, ProductWindow
from streams.orders.demo import order_events
from tests.conftest import committed, wait_until
from tests.streams.conftest import consumed

T0 = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)
# These tests send orders minutes out of order on purpose; event time is tested below
# and in test_event_time.py, with the default-like grace.
WIDE_GRACE = {"ORDERS_WINDOW_GRACE_SECONDS": "3600", "ORDERS_IDLE_CLOSE_SECONDS": "3600"}


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
    # The orders come up to 150 s out of order: a grace wider than that keeps every one on time.
    processes.consumer("order_windows", **WIDE_GRACE)
    wait_until(lambda: ProcessedOrder.objects.count() == 300, message="300 stored orders")
    expected = expected_windows(events)
    wait_until(lambda: stored_windows() == expected, message="windows equal to the independent sum")

    # An order 145 s behind the newest is within the (wide) grace: it lands in its window.
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
                                           "order_count", "total_revenue", "avg_order_value", "final"}
    assert not any(m["final"] for m in metrics)
    assert {m.key() for m in kafka.read("processed_orders", expected=301)} == \
        {e["order_id"].encode() for e in events + [late]}  # keyed by order, spread over the partitions
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
                 key=e["order_id"])
        for e in events
    ]
    # Re-driven duplicates of 500 orders, later in the stream.
    processed += processed[:500]
    produce_and_wait(processed, timeout=60)
    # A short session lets the group hand the killed member's partitions over quickly.
    consumer = processes.consumer("order_windows", "--batch-size", "100",
                                  KAFKA_CLIENT_CONFIG="session.timeout.ms=6000", **WIDE_GRACE)
    wait_until(lambda: ProcessedOrder.objects.count() >= 1500, message="the first batches")
    consumer.send_signal(signal.SIGKILL)
    consumer.wait(timeout=10)
    assert ProcessedOrder.objects.count() < 12_000, "finished before the kill; produce more"

    restarted = processes.consumer("order_windows", "--batch-size", "500", **WIDE_GRACE)
    expected = expected_windows(events)
    wait_until(lambda: stored_windows() == expected, timeout=120, message="exact windows after the restart")
    assert ProcessedOrder.objects.count() == 12_000

    # A whole replay from the start (a new consumer group) changes nothing. One group runs
    # order_windows at a time: the first stops, and its killed process's heartbeat, still
    # fresh, is counted stale after 6 s here (test_a_second_order_windows_group_waits...).
    processes.stop(restarted)
    replay = processes.consumer("order_windows", "--batch-size", "2000",
                                CONSUMER_GROUP_PREFIX=kafka.group_prefix + "-replay",
                                CONSUMER_HEARTBEAT_STALE_SECONDS="6", CONSUMER_BACKOFF_MAX_SECONDS="1", **WIDE_GRACE)
    wait_until(lambda: consumed(processes, replay) >= 12_500, timeout=60,
               message="the replay to reach the end of the topic")
    assert stored_windows() == expected


def test_a_second_order_windows_group_waits_while_the_first_runs(kafka, processes, catalog):
    """The windows are shared by every group on the database, and each group closes them
    by its own watermark and clock. A second group of order_windows (another
    CONSUMER_GROUP_PREFIX: a stale deployment, a leftover process) holds its batches,
    uncommitted, and its heartbeat says why, while the first group's process is live;
    once that one stops, it applies them, which changes nothing (each order is stored once)."""
    events = order_events(60, now=T0 + timedelta(minutes=1), spread_seconds=60, rng=random.Random(5))
    names = dict(Product.objects.values_list("product_id", "name"))
    produce_and_wait([
        Outbound(kafka.name("processed_orders"),
                 {**e, "product_name": names[e["product_id"]], "category": "", "processed_at": e["timestamp"]},
                 key=e["order_id"])
        for e in events
    ])
    first = processes.consumer("order_windows", **WIDE_GRACE)
    expected = expected_windows(events)
    wait_until(lambda: stored_windows() == expected, message="the first group's windows")

    rival_group = f"{kafka.group_prefix}-rival-order_windows"
    rival = processes.consumer("order_windows", CONSUMER_GROUP_PREFIX=kafka.group_prefix + "-rival",
                               CONSUMER_BACKOFF_MAX_SECONDS="1", **WIDE_GRACE)

    def rival_state() -> tuple[str, str]:
        row = ConsumerHeartbeat.objects.filter(group_id=rival_group).order_by("-beat_at").first()
        return (row.state, row.reason) if row else ("", "")

    wait_until(lambda: rival_state()[0] == "paused", message="the second group to hold its batch")
    assert f"another consumer group, {kafka.group_prefix}-order_windows, runs order_windows" in rival_state()[1]
    assert committed(kafka, rival_group, ["processed_orders"])[0] <= 0  # nothing committed (-1: not known yet)
    assert consumer_health(["order_windows"])["order_windows"]["status"] == "failing"
    assert stored_windows() == expected

    processes.stop(first)
    wait_until(lambda: committed(kafka, rival_group, ["processed_orders"]) == (60, 60), timeout=60,
               message="the second group to apply and commit once the first stopped")
    # Its heartbeat says running from its next loop step on, just after the commit.
    wait_until(lambda: rival_state()[0] == "running", timeout=30, message="the second group's heartbeat")
    assert rival.poll() is None
    assert stored_windows() == expected and ProcessedOrder.objects.count() == 60


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


def produce_processed(kafka, partition: int, events) -> None:
    """Processed orders onto one partition of processed-orders (what `orders` would publish)."""
    names = dict(Product.objects.values_list("product_id", "name"))
    producer = Producer(producer_config())
    for e in events:
        value = {**e, "product_name": names[e["product_id"]], "category": "", "processed_at": e["timestamp"]}
        producer.produce(kafka.name("processed_orders"), json.dumps(value).encode(), key=e["order_id"].encode(),
                         partition=partition)
    assert producer.flush(30) == 0


def finals_published(kafka, start: datetime) -> dict[str, list[tuple[int, Decimal]]]:
    finals: dict[str, list[tuple[int, Decimal]]] = defaultdict(list)
    for m in kafka.read("product_metrics", expected=kafka.end_offsets("product_metrics")):
        value = json.loads(m.value())
        if value["final"] and value["window_start"] == int(start.timestamp()):
            finals[value["product_id"]].append((value["order_count"], Decimal(str(value["total_revenue"]))))
    return dict(finals)


@pytest.mark.kafka_partitions(3)
def test_event_time_over_three_partitions_an_idle_one_and_late_orders_released_in_the_admin(
        kafka, processes, catalog, client):
    rng = random.Random(12)
    # Event times a few minutes ahead of the clock: the windows close by the watermark only. With
    # times long past, the idle timer would close them by the wall clock while partitions rest.
    now = datetime.now(UTC)
    T0 = datetime.fromtimestamp((int(now.timestamp()) // 60 + 5) * 60, tz=UTC)  # noqa: N806
    w0, w1 = T0, T0 + timedelta(seconds=60)
    # Every partition: orders of the first window, up to 59 s out of order (never more than the window).
    first = {p: order_events(40, now=T0 + timedelta(seconds=59), spread_seconds=59, rng=rng) for p in range(3)}
    # Partitions 0 and 1 move on to the next window; partition 2 stops at the first one and holds the watermark.
    later = {p: order_events(10, now=T0 + timedelta(seconds=110), spread_seconds=10, rng=rng) for p in (0, 1)}
    in_grace = order_events(1, now=T0 + timedelta(seconds=55), rng=rng)  # 55 s behind partition 0: held open
    for p in range(3):
        produce_processed(kafka, p, first[p] + later.get(p, []) + (in_grace if p == 0 else []))
    on_time = first[0] + first[1] + first[2] + later[0] + later[1] + in_grace

    processes.consumer("order_windows", ORDERS_WINDOW_GRACE_SECONDS="10", ORDERS_IDLE_CLOSE_SECONDS="8")
    wait_until(lambda: ProcessedOrder.objects.count() == len(on_time), message="every order stored")
    wait_until(lambda: stored_windows() == expected_windows(on_time), message="windows equal to the independent sum")
    assert not ProductWindow.objects.filter(window_start=w0, final=True).exists(), \
        "partition 2 (newest order before T0+60) holds the first window open"

    # Partitions 1 and 2 go quiet past the idle time; one order on partition 0 lets the watermark move on.
    time.sleep(9)
    nudge = order_events(1, now=T0 + timedelta(seconds=111), rng=rng)
    produce_processed(kafka, 0, nudge)
    on_time += nudge

    def first_final_second_open():
        # Read together: once partition 0 is idle too (8 s after the nudge), the second window
        # closes by the wall clock, as it should; the point here is the moment the first closes.
        first_final = ProductWindow.objects.filter(window_start=w0, final=True).count()
        second_final = ProductWindow.objects.filter(window_start=w1, final=True).count()
        return (first_final, second_final) if first_final == 5 else None

    snapshot = wait_until(first_final_second_open,
                          message="the first window final for every product once partition 2 is idle")
    assert snapshot == (5, 0)  # the watermark is T0+101 < T0+120: the second window stays open
    expected = expected_windows(on_time)
    assert stored_windows() == expected
    finals = wait_until(lambda: (f := finals_published(kafka, w0)) and len(f) == 5 and f,
                        message="a final message per product of the first window")
    assert {p: v for p, v in finals.items()} == {p: [expected[(p, int(w0.timestamp()))]] for p in finals}

    # Late orders beyond the grace, on the partition that was idle: stored, counted, not added.
    late = order_events(6, now=T0 + timedelta(seconds=20), spread_seconds=15, rng=rng)
    produce_processed(kafka, 2, late)
    wait_until(lambda: ProcessedOrder.objects.filter(late=True).count() == 6, message="six late orders stored")
    late_sum = expected_windows(late)
    assert stored_windows() == expected
    assert {(w.product_id, int(w.window_start.timestamp())): (w.late_count, w.late_revenue)
            for w in ProductWindow.objects.filter(late_count__gt=0)} == late_sum

    # A viewer sees no release action and cannot run it; an operator can, once.
    viewer = User.objects.create_user("late-viewer", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(content_type__app_label="streams",
                                                           codename__startswith="view_"))
    operator = User.objects.create_user("late-operator", is_staff=True)
    operator.groups.add(Group.objects.get(name="operators"))
    ids = list(ProductWindow.objects.filter(late_count__gt=0).values_list("pk", flat=True))
    form = {"action": "release_late", "_selected_action": ids}
    client.force_login(viewer)
    assert "release_late" not in client.get("/admin/streams/productwindow/").content.decode()
    client.post("/admin/streams/productwindow/", form, follow=True)
    assert stored_windows() == expected and not LogEntry.objects.exists()
    client.force_login(operator)
    page = client.get("/admin/streams/productwindow/", {"final__exact": "1"}).content.decode()
    assert "release_late" in page
    response = client.post("/admin/streams/productwindow/", form, follow=True)
    assert "Released 6 late order(s)" in response.content.decode()
    released = expected_windows(on_time + late)
    assert stored_windows() == released
    assert ProductWindow.objects.filter(late_count__gt=0).count() == 0
    client.post("/admin/streams/productwindow/", form, follow=True)  # twice: nothing more changes
    assert stored_windows() == released
    entries = LogEntry.objects.filter(user=operator, change_message__startswith="Released")
    assert entries.count() == len(ids)
    audit = AuditEntry.objects.get(action="late_orders_release")  # the second release changed nothing
    assert audit.actor == operator and sum(w["released"] for w in audit.detail["windows"]) == 6
    assert ProcessedOrder.objects.filter(late=True, released_by=operator).count() == 6
    # Each corrected window is published again as final, with its new totals.
    republished = finals_published(kafka, w0)
    for product_id, _start in late_sum:
        assert republished[product_id][-1] == released[(product_id, int(w0.timestamp()))]
        assert len(republished[product_id]) == 2
