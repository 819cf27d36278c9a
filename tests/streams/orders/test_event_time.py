"""Event time of the order windows through the service functions: grace, the
watermark over partitions, the idle timer (the tick the runtime will call),
late orders and their release. The database is real; Kafka is the test's own
topics (final windows are published after the close step's commit, as the consumer's
outcome is: `tick` below)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.db import transaction
from django.utils import timezone

from streams.models import OrderWatermark, ProcessedOrder, Product, ProductWindow
from streams.orders.demo import catalog_seed_demo
from streams.kafka.producer import produce_and_wait
from streams.kafka.registry import PartitionProgress
from streams.orders.consumers import windows_tick
from streams.orders.services import (
    PartitionSeen,
    ProcessedOrderIn,
    order_windows_apply,
    order_windows_release_late,
    record_progress,
    validate_order,
)

T0 = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)
GROUP = "test-event-time"
TOPIC = "processed"


@pytest.fixture
def event_time(settings):
    settings.ORDERS_WINDOW_SECONDS = 60
    settings.ORDERS_WINDOW_GRACE_SECONDS = 10
    settings.ORDERS_IDLE_CLOSE_SECONDS = 3600


def order(n: int, at: datetime, *, product: str = "prod-1", amount: str = "10.00") -> dict:
    return {"order_id": f"o-{n}", "user_id": "u-1", "product_id": product, "amount": amount,
            "timestamp": at.isoformat()}


def tick(*, upstream: str | None = None) -> int:
    """The windows' tick of the test's group as the runtime runs it (apply.apply_tick): the
    close in a transaction, then, after it, the final windows published and marked once
    the broker acknowledged them. Returns the messages published."""
    with transaction.atomic():
        outcome = windows_tick(None, group=GROUP, upstream=upstream)
    if outcome.outbound:
        produce_and_wait(outcome.outbound)
    for step in outcome.after_publish:
        with transaction.atomic():
            step()
    return len(outcome.outbound)


def apply(events: list[dict], *, partition: int = 0):
    names = dict(Product.objects.values_list("product_id", "name"))
    items = [ProcessedOrderIn(order=validate_order(e), product_name=names[e["product_id"]], category="",
                              processed_at=T0) for e in events]
    newest = max(i.order.timestamp for i in items)
    result = order_windows_apply(orders=items, group=GROUP,
                                 seen=[PartitionSeen(topic=TOPIC, partition=partition, max_event_at=newest)])
    tick()  # the close and the final windows' publication, as after each batch
    return result


def window(start: datetime, product: str = "prod-1") -> ProductWindow:
    return ProductWindow.objects.get(product_id=product, window_start=start)


def published(kafka) -> list[dict]:
    return [json.loads(m.value()) for m in kafka.read("product_metrics",
                                                      expected=kafka.end_offsets("product_metrics"))]


def test_grace_final_late_and_release_exactly_once(kafka, catalog, event_time):
    on_time = [order(1, T0 + timedelta(seconds=5), amount="10.00"), order(2, T0 + timedelta(seconds=50))]
    apply(on_time)
    apply([order(3, T0 + timedelta(seconds=65), amount="7.00")])  # watermark T0+55: T0's window stays open
    assert not window(T0).final
    in_grace = [order(4, T0 + timedelta(seconds=56), amount="3.50")]  # 9 s behind the newest: within grace
    result = apply(in_grace)
    assert result.late == 0 and not window(T0).final
    apply([order(5, T0 + timedelta(seconds=75))])  # watermark T0+65 >= T0+60: final
    w = window(T0)
    assert w.final and w.finalized_at and w.final_published_at
    assert (w.order_count, w.total_revenue) == (3, Decimal("23.50"))  # orders 1, 2, 4

    late = [order(6, T0 + timedelta(seconds=30), amount="100.00"), order(7, T0 + timedelta(seconds=1), amount="1.25")]
    result = apply(late)
    assert result.stored == 2 and result.late == 2
    w = window(T0)
    assert (w.order_count, w.total_revenue, w.late_count, w.late_revenue) == (3, Decimal("23.50"), 2, Decimal("101.25"))
    assert set(ProcessedOrder.objects.filter(late=True).values_list("order_id", flat=True)) == {"o-6", "o-7"}
    assert apply(late).stored == 0  # a replay of late orders counts nothing twice
    assert window(T0).late_count == 2

    # A late order for a window that never had a row: counted on a new, final window.
    result = apply([order(8, T0 - timedelta(seconds=120), amount="5.00")])
    old = window(T0 - timedelta(seconds=120))
    assert result.late == 1 and old.final and (old.order_count, old.late_count) == (0, 1)

    finals = [m for m in published(kafka) if m["window_start"] == int(T0.timestamp()) and m["final"]]
    assert len(finals) == 1 and finals[0]["order_count"] == 3 and finals[0]["total_revenue"] == 23.5
    assert set(finals[0]) == {"window_start", "window_end", "product_id", "product_name", "order_count",
                              "total_revenue", "avg_order_value", "final"}

    operator = User.objects.create_user("op", is_staff=True)
    operator.groups.add(Group.objects.get(name="operators"))
    operator = User.objects.get(pk=operator.pk)
    assert operator.has_perm("streams.release_late_orders")
    released = order_windows_release_late(windows=[window(T0)], by=operator)
    assert (released.windows, released.orders, released.revenue, released.published) == (1, 2, Decimal("101.25"), True)
    w = window(T0)
    assert (w.order_count, w.total_revenue, w.late_count, w.late_revenue) == (5, Decimal("124.75"), 0, Decimal("0"))
    assert w.avg_order_value == Decimal("24.95")
    again = order_windows_release_late(windows=[window(T0)], by=operator)
    assert again.windows == 0 and window(T0).total_revenue == Decimal("124.75")
    assert ProcessedOrder.objects.filter(late=True, released_by=operator).count() == 2
    entry = LogEntry.objects.get(object_id=str(w.pk))
    assert "Released 2 late order(s)" in entry.change_message and entry.user == operator

    finals = [m for m in published(kafka) if m["window_start"] == int(T0.timestamp()) and m["final"]]
    assert [(m["order_count"], m["total_revenue"]) for m in finals] == [(3, 23.5), (5, 124.75)]


def test_watermark_is_the_slowest_active_partition_and_an_idle_one_stops_holding_it(kafka, catalog, event_time):
    apply([order(1, T0 + timedelta(seconds=10))], partition=0)
    apply([order(2, T0 + timedelta(seconds=20))], partition=1)
    apply([order(3, T0 + timedelta(seconds=200))], partition=0)
    assert not window(T0).final, "partition 1 (newest T0+20) holds the watermark at T0+10"
    # Partition 1 goes quiet for longer than the idle time: it no longer holds the watermark.
    OrderWatermark.objects.filter(group_id=GROUP, partition=1).update(
        idle_since=timezone.now() - timedelta(seconds=3601), caught_up_at=timezone.now())
    tick()
    assert window(T0).final
    assert not window(T0 + timedelta(seconds=180)).final  # T0+200 - 10 s does not pass T0+240
    # It wakes up with an old order: late for the final window, and it holds the watermark again.
    result = apply([order(4, T0 + timedelta(seconds=30))], partition=1)
    assert result.late == 1 and window(T0).late_count == 1
    apply([order(5, T0 + timedelta(seconds=400))], partition=0)
    assert not window(T0 + timedelta(seconds=180)).final


def backdate(partition: int, *, idle_for: float | None = None, reported_ago: float = 0.0) -> None:
    """As if the partition's member had reported it caught up `idle_for` seconds ago and last
    said so `reported_ago` seconds ago (the clock of the rule, without waiting for it)."""
    now = timezone.now()
    OrderWatermark.objects.filter(group_id=GROUP, partition=partition).update(
        idle_since=None if idle_for is None else now - timedelta(seconds=idle_for),
        caught_up_at=now - timedelta(seconds=reported_ago))


PARTITIONS = tuple((TOPIC, p) for p in range(3))


def test_watermark_rule_unassigned_backlogged_and_truly_idle_partitions(kafka, catalog, event_time, settings):
    """The rule, partition by partition: only a partition caught up for the idle time, and
    still reported so by its member, stops holding the watermark. An unassigned one (no
    member reports it), one with a backlog, and one whose member stopped reporting (dead,
    paused) hold it at their last order time; one never seen holds it undefined."""
    settings.ORDERS_IDLE_CLOSE_SECONDS = 30
    # A member owns partitions 0 and 1; partition 2 is nobody's yet (its member died at start).
    record_progress(group=GROUP, progress=PartitionProgress(caught_up=(), behind=PARTITIONS[:2],
                                                            partitions=PARTITIONS))
    apply([order(1, T0 + timedelta(seconds=10))], partition=0)
    apply([order(2, T0 + timedelta(seconds=200))], partition=1)
    assert not window(T0).final, "partition 2 was never seen: no watermark at all"
    apply([order(3, T0 + timedelta(seconds=20))], partition=2)
    apply([order(4, T0 + timedelta(seconds=300))], partition=0)
    assert not window(T0).final, "partition 2 (newest T0+20) holds the watermark"

    # Partition 2 is unassigned for an hour: never reported caught up, it keeps holding.
    backdate(2, idle_for=None, reported_ago=3600)
    tick()
    assert not window(T0).final
    # Its member reports it caught up, but for less than the idle time: still holds.
    record_progress(group=GROUP, progress=PartitionProgress(caught_up=(PARTITIONS[2],), partitions=PARTITIONS))
    tick()
    assert not window(T0).final
    # Caught up for longer than the idle time, but its member stopped reporting (it died): holds.
    backdate(2, idle_for=3600, reported_ago=600)
    tick()
    assert not window(T0).final
    # Reported with a backlog (a new member found unread messages there): holds, streak ended.
    record_progress(group=GROUP, progress=PartitionProgress(behind=(PARTITIONS[2],), partitions=PARTITIONS))
    assert OrderWatermark.objects.get(group_id=GROUP, partition=2).idle_since is None
    tick()
    assert not window(T0).final
    # Truly idle: caught up for longer than the idle time and reported so now. It stops holding.
    backdate(2, idle_for=31)
    tick()
    assert window(T0).final
    # A message on it ends the streak: it holds again from its new order time.
    apply([order(5, T0 + timedelta(seconds=250))], partition=2)
    assert OrderWatermark.objects.get(group_id=GROUP, partition=2).idle_since is None
    apply([order(6, T0 + timedelta(seconds=500))], partition=0)
    apply([order(7, T0 + timedelta(seconds=500))], partition=1)
    assert not window(T0 + timedelta(seconds=240)).final, "partition 2 at T0+250 holds T0+240's window"


def test_the_wall_clock_closes_nothing_while_the_group_is_stalled(kafka, catalog, event_time, settings):
    """The stall of issue 22: the members stop applying (a dead member, a rebalance) while
    their partitions have a backlog. The wall clock passes every window's end + grace +
    idle, and no batch arrives: nothing closes, because no partition is caught up."""
    settings.ORDERS_IDLE_CLOSE_SECONDS = 30
    now = timezone.now()
    record_progress(group=GROUP, progress=PartitionProgress(behind=PARTITIONS, partitions=PARTITIONS))
    for p in range(3):
        apply([order(10 + p, now - timedelta(seconds=600 - p))], partition=p)
    start = window_start_for(now - timedelta(seconds=600))
    OrderWatermark.objects.filter(group_id=GROUP).update(seen_at=now - timedelta(seconds=3600))
    tick()  # no member reports anything: every partition holds
    assert not window(start).final
    # The upstream group (its stamps feed this one) has a partition that is not idle: still quiet is not quiet.
    for p in range(3):
        backdate(p, idle_for=3600)
    OrderWatermark.objects.create(group_id="upstream", topic="orders", partition=0,
                                  max_event_at=now - timedelta(seconds=900), seen_at=now)
    tick(upstream="upstream")
    assert not window(start).final
    # Everything caught up and idle, upstream too: the wall clock closes it.
    OrderWatermark.objects.filter(group_id="upstream").update(idle_since=now - timedelta(seconds=3600),
                                                              caught_up_at=now)
    tick(upstream="upstream")
    assert window(start).final


def window_start_for(moment: datetime) -> datetime:
    return datetime.fromtimestamp(int(moment.timestamp()) // 60 * 60, tz=UTC)


def test_a_quiet_stream_closes_its_windows_by_wall_clock(kafka, catalog, event_time, settings):
    settings.ORDERS_IDLE_CLOSE_SECONDS = 30
    now = timezone.now()
    mark = OrderWatermark.objects.create(group_id=GROUP, topic=TOPIC, partition=0,
                                         max_event_at=now - timedelta(seconds=50), seen_at=now)
    due = ProductWindow.objects.create(product_id="prod-1", product_name="Laptop",
                                       window_start=now - timedelta(seconds=101), window_end=now - timedelta(seconds=41),
                                       order_count=1, total_revenue=1, avg_order_value=1)
    ahead = ProductWindow.objects.create(product_id="prod-2", product_name="Phone",
                                         window_start=now - timedelta(seconds=60), window_end=now,
                                         order_count=1, total_revenue=1, avg_order_value=1)
    tick()
    due.refresh_from_db()
    assert not due.final, "the partition is active and its watermark (now - 60 s) is behind the end"
    # Caught up with no message for longer than the idle time: the wall clock is past end + grace + idle, the tick closes it.
    mark.idle_since, mark.caught_up_at = now - timedelta(seconds=31), timezone.now()
    mark.save()
    tick()
    due.refresh_from_db()
    ahead.refresh_from_db()
    assert due.final and due.final_published_at
    assert not ahead.final  # its end + grace + idle is still ahead, even on a quiet stream
    finals = [m for m in published(kafka) if m["final"]]
    assert [m["product_id"] for m in finals] == ["prod-1"]


@pytest.mark.django_db(transaction=True)
def test_two_consumers_creating_the_same_new_window_at_once_never_add_to_a_final_window(event_time):
    """Group "ahead" (its watermark far past T0's window) and group "fresh" (no watermark) apply
    orders for the same window, which has no row yet, in two transactions at once. "ahead"
    creates the window final with its orders late; "fresh", though its own watermark says on
    time, must then count its orders late too: a final window's totals never change."""
    import threading

    from django.db import connection, transaction

    catalog_seed_demo(count=5)
    OrderWatermark.objects.create(group_id="ahead", topic=TOPIC, partition=0,
                                  max_event_at=T0 + timedelta(hours=1), seen_at=timezone.now())

    def items(first: int, n: int) -> list[ProcessedOrderIn]:
        return [ProcessedOrderIn(order=validate_order(order(i, T0 + timedelta(seconds=5))), product_name="Laptop",
                                 category="", processed_at=T0) for i in range(first, first + n)]

    applied_ahead, done = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def ahead() -> None:
        try:
            with transaction.atomic():
                results["ahead"] = order_windows_apply(orders=items(0, 3), group="ahead")
                applied_ahead.set()
                time.sleep(1.0)  # "fresh" runs meanwhile, and must wait for this commit
        finally:
            applied_ahead.set()
            connection.close()

    def fresh() -> None:
        applied_ahead.wait(10)
        try:
            with transaction.atomic():
                results["fresh"] = order_windows_apply(orders=items(10, 2), group="fresh")
        finally:
            done.set()
            connection.close()

    threads = [threading.Thread(target=ahead), threading.Thread(target=fresh)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results["ahead"].late == 3 and results["fresh"].late == 2
    w = window(T0)
    assert w.final and (w.order_count, w.total_revenue) == (0, 0)
    assert (w.late_count, w.late_revenue) == (5, Decimal("50.00"))
    assert ProcessedOrder.objects.filter(late=True).count() == 5
    assert ProductWindow.objects.count() == 1


def test_orders_read_one_input_partition_ahead_of_another_are_not_made_late_downstream(kafka, catalog, event_time):
    """Both hops' handlers, batch by batch. `orders` takes input partition 0 up to
    T0+130 in its first batch but partition 1 only to T0+3; `processed-orders` (keyed
    by order) then holds orders of both in each of its partitions. The stamp of
    `orders` (a time no order of its batch or after it is older than), not each downstream partition's
    newest order, moves the windows' watermark: no order of partition 1 is late."""
    from streams.kafka.registry import Envelope
    from streams.kafka.topics import topic_name
    from streams.orders.consumers import decode_order, decode_processed_order, handle_order_windows, handle_orders

    def hop1(parts: dict[int, list[dict]], start: int) -> list:
        envelopes = []
        for p, events in parts.items():
            for i, e in enumerate(events):
                env = Envelope(topic=topic_name("orders"), partition=p, offset=start + i, key=None, headers=[],
                               raw=json.dumps(e).encode())
                env.value = decode_order(env)
                envelopes.append(env)
        outcome = handle_orders(envelopes)
        for step in outcome.after_publish:  # as the runtime does once the broker acknowledged them
            step()
        return outcome.outbound

    def hop2(outbound: list, start: int) -> None:
        envelopes = []
        for i, o in enumerate(outbound):
            env = Envelope(topic=topic_name("processed_orders"), partition=i % 3, offset=start + i,
                           key=o.key.encode(), headers=o.headers or [], raw=o.encoded_value())
            env.value = decode_processed_order(env)
            envelopes.append(env)
        handle_order_windows(envelopes)

    at = lambda s: T0 + timedelta(seconds=s)  # noqa: E731
    ahead = [order(n, at(n * 4 + 1)) for n in range(33)]  # T0+1 .. T0+129
    behind = [order(100 + n, at(n + 1)) for n in range(3)]  # T0+1 .. T0+3
    rest = [order(200 + n, at(n * 4 + 4)) for n in range(32)]  # T0+4 .. T0+128
    first = hop1({0: ahead, 1: behind}, 0)
    assert {o.headers[0][1] for o in first} == {at(1).isoformat().replace("+00:00", "Z").encode()}
    hop2(first, 0)
    assert not window(T0).final, "partition 1 of `orders` (newest T0+3) holds the first window open"
    second = hop1({1: rest, 0: [order(300, at(131))]}, 100)
    # The oldest order of partition 1 in this batch (T0+4): nothing of it or after it is older.
    assert {o.headers[0][1] for o in second} == {at(4).isoformat().replace("+00:00", "Z").encode()}
    hop2(second, 100)
    everything = ahead + behind + rest + [order(300, at(131))]
    assert not ProcessedOrder.objects.filter(late=True).exists()
    assert ProcessedOrder.objects.count() == len(everything)
    expected: dict[datetime, int] = {}
    for e in everything:
        start = T0 + timedelta(seconds=(datetime.fromisoformat(e["timestamp"]) - T0).total_seconds() // 60 * 60)
        expected[start] = expected.get(start, 0) + 1
    assert {w.window_start: w.order_count for w in ProductWindow.objects.filter(product_id="prod-1")} == expected
    assert sum(w.late_count for w in ProductWindow.objects.all()) == 0
