"""How the windows leave on `product-metrics`: open and final windows both through the
consumer's outcome (published after the commit, the final ones marked after the
broker's ack), never from inside the transaction; a final window changed between its
selection and the ack is not marked; the tick's outcome goes through the platform."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from streams.kafka.apply import apply_tick
from streams.kafka.producer import Outbound, produce_and_wait
from streams.kafka.registry import Envelope, PartitionProgress, get_consumer
from streams.kafka.topics import topic_name
from streams.models import ProductWindow
from streams.orders.consumers import decode_processed_order, handle_order_windows
from streams.orders.services import (
    enrich_order,
    order_windows_final_unpublished,
    order_windows_mark_published,
    validate_order,
)

T0 = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def event_time(settings):
    settings.ORDERS_WINDOW_SECONDS = 60
    settings.ORDERS_WINDOW_GRACE_SECONDS = 10
    settings.ORDERS_IDLE_CLOSE_SECONDS = 3600


def envelopes(orders: list[tuple[str, datetime, str]], offset: int) -> list[Envelope]:
    """`order_windows` input: processed orders (id, time, amount) of prod-1 on partition 0."""
    result = []
    for i, (order_id, at, amount) in enumerate(orders):
        order = validate_order({"order_id": order_id, "user_id": "u-1", "product_id": "prod-1", "amount": amount,
                                "timestamp": at.isoformat()})
        raw = Outbound(topic="-", value=enrich_order(order, product_name="Laptop", category="Computers",
                                                     processed_at=T0)).encoded_value()
        envelope = Envelope(topic=topic_name("processed_orders"), partition=0, offset=offset + i, key=None,
                            headers=[], raw=raw)
        envelope.value = decode_processed_order(envelope)
        result.append(envelope)
    return result


def published(kafka) -> list[dict]:
    end = kafka.end_offsets("product_metrics")
    return [json.loads(m.value()) for m in kafka.read("product_metrics", expected=end)] if end else []


def test_a_batch_publishes_the_windows_it_closed_through_its_outcome_and_marks_them_after_the_ack(
        kafka, catalog, event_time):
    with transaction.atomic():
        first = handle_order_windows(envelopes([("o-1", T0 + timedelta(seconds=5), "10.00")], 0))
    assert [(m["window_start"], m["final"]) for m in (o.value for o in first.outbound)] == [
        (int(T0.timestamp()), False)]
    with transaction.atomic():  # its watermark (T0+65) passes the end of T0's window: closed by this batch
        second = handle_order_windows(envelopes([("o-2", T0 + timedelta(seconds=75), "4.00")], 1))
    messages = [o.value for o in second.outbound]
    assert [(m["window_start"], m["final"], m["order_count"]) for m in messages] == [
        (int(T0.timestamp()) + 60, False, 1), (int(T0.timestamp()), True, 1)], "open first, then final"
    assert {o.topic for o in second.outbound} == {topic_name("product_metrics")}
    assert {o.key for o in second.outbound} == {"prod-1"}
    assert published(kafka) == [], "nothing leaves from inside the transaction"
    closed = ProductWindow.objects.get(window_start=T0)
    assert closed.final and closed.final_published_at is None, "marked only after the broker's ack"

    produce_and_wait(second.outbound)  # what apply.py does after the commit, then the after_publish steps
    for step in second.after_publish:
        with transaction.atomic():
            step()
    closed.refresh_from_db()
    assert closed.final_published_at is not None
    assert [m for m in published(kafka) if m["final"]] == [messages[1]]
    with transaction.atomic():  # a later batch publishes no final window it did not close
        third = handle_order_windows(envelopes([("o-3", T0 + timedelta(seconds=80), "1.00")], 2))
    assert not any(o.value["final"] for o in third.outbound)


def test_a_final_window_changed_between_its_selection_and_the_ack_is_left_for_the_tick(catalog):
    now = timezone.now()
    kept, changed = (ProductWindow.objects.create(
        product_id=p, product_name=p, window_start=T0, window_end=T0 + timedelta(seconds=60), order_count=1,
        total_revenue=Decimal("5.00"), avg_order_value=Decimal("5.00"), final=True, finalized_at=now)
        for p in ("prod-1", "prod-2"))
    with transaction.atomic():
        final = order_windows_final_unpublished()
    assert sorted(m["product_id"] for m in final.messages) == ["prod-1", "prod-2"]
    # A release commits on prod-2's window before the ack: the message acknowledged is older.
    ProductWindow.objects.filter(pk=changed.pk).update(order_count=2, total_revenue=Decimal("9.00"),
                                                       updated_at=timezone.now())
    before = ProductWindow.objects.get(pk=changed.pk).updated_at
    order_windows_mark_published(versions=final.versions)
    kept.refresh_from_db()
    changed.refresh_from_db()
    assert kept.final_published_at is not None
    assert changed.final_published_at is None and changed.updated_at > before, \
        "not marked, and its version moved so that no concurrent publication of the new state marks it"
    with transaction.atomic():
        again = order_windows_final_unpublished()
    assert [(m["product_id"], m["order_count"]) for m in again.messages] == [("prod-2", 2)]


@pytest.mark.django_db(transaction=True)
def test_the_tick_publishes_through_the_platform_after_its_commit_and_marks_after_the_ack(kafka, settings):
    """`order_windows`' tick as the runtime runs it (apply_tick): a quiet stream's due window
    is closed by the wall clock in the tick's transaction, published after it, marked after the ack."""
    settings.ORDERS_WINDOW_GRACE_SECONDS = 10
    settings.ORDERS_IDLE_CLOSE_SECONDS = 30
    start = timezone.now().replace(microsecond=0) - timedelta(seconds=300)
    ProductWindow.objects.create(product_id="prod-1", product_name="Laptop", window_start=start,
                                 window_end=start + timedelta(seconds=60), order_count=2,
                                 total_revenue=Decimal("20.00"), avg_order_value=Decimal("10.00"))
    assert apply_tick(get_consumer("order_windows"), PartitionProgress()) == 1
    window = ProductWindow.objects.get()
    assert window.final and window.final_published_at is not None
    assert published(kafka) == [{"window_start": int(start.timestamp()), "window_end": int(start.timestamp()) + 60,
                                 "product_id": "prod-1", "product_name": "Laptop", "order_count": 2,
                                 "total_revenue": 20.0, "avg_order_value": 10.0, "final": True}]
    assert apply_tick(get_consumer("order_windows"), PartitionProgress()) == 0  # published once
