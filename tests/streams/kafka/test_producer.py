"""The producer's front door (streams/kafka/producer.py).

The web producer's deliveries are counted once per caller (_web_producer.py), and every
message is counted, whether its caller waited for it, gave up, or could not queue them
all: with a fake producer, no broker. Each way of waiting returns only once the real
broker acknowledged every message, and raises DeliveryError when it does not answer in
time. The two waits besides the endpoints' have their floors.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from confluent_kafka import KafkaError, KafkaException

from streams.kafka._web_producer import _Pending, _queue_all
from streams.kafka.producer import (
    DeliveryError,
    Outbound,
    action_ack_timeout,
    batch_ack_timeout,
    deliveries,
    produce_and_wait,
    publish_and_wait,
    publish_and_wait_async,
)


class FakeProducer:
    """Queues the delivery callbacks; refuses the message number `refuse_at` (an unknown topic)."""

    def __init__(self, refuse_at: int | None = None) -> None:
        self.callbacks: list = []
        self.refuse_at = refuse_at

    def produce(self, topic, *, value, key, headers, on_delivery) -> None:
        if len(self.callbacks) == self.refuse_at:
            raise KafkaException(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
        self.callbacks.append(on_delivery)


class Message:
    def topic(self) -> str:
        return "t"


def counted() -> dict[str, float]:
    return {s.labels["outcome"]: s.value for s in deliveries.collect()[0].samples if s.name.endswith("_total")}


def queue(producer: FakeProducer, n: int, pending: _Pending) -> None:
    list(_queue_all(producer, [Outbound("t", b"{}")] * n, pending, time.monotonic() + 5, 5.0))


def test_a_callers_deliveries_are_counted_once_with_the_last_report():
    before, notified = counted(), []
    producer, pending = FakeProducer(), _Pending(3, lambda: notified.append(1))
    queue(producer, 3, pending)
    producer.callbacks[0](None, Message())
    producer.callbacks[1](KafkaError(KafkaError._MSG_TIMED_OUT), Message())
    assert counted() == before and not notified  # one report still to come
    producer.callbacks[2](None, Message())
    after = counted()
    assert (after["delivered"] - before["delivered"], after["failed"] - before["failed"]) == (2, 1)
    assert notified == [1]


def test_messages_queued_before_a_refusal_are_counted_when_their_reports_arrive():
    before = counted()
    producer, pending = FakeProducer(refuse_at=2), _Pending(4, lambda: None)
    with pytest.raises(DeliveryError, match="cannot publish to t"):
        queue(producer, 4, pending)
    producer.callbacks[0](None, Message())
    assert counted() == before
    producer.callbacks[1](None, Message())
    assert counted()["delivered"] - before["delivered"] == 2

    nothing = _Pending(2, lambda: None)
    with pytest.raises(DeliveryError):
        queue(FakeProducer(refuse_at=0), 2, nothing)
    assert counted()["delivered"] - before["delivered"] == 2 and nothing.count == 0


def test_an_action_waits_at_least_10_s_and_a_batch_at_least_30_s(settings):
    settings.KAFKA_PRODUCE_TIMEOUT_SECONDS = 5.0
    assert (action_ack_timeout(), batch_ack_timeout()) == (10.0, 30.0)
    settings.KAFKA_PRODUCE_TIMEOUT_SECONDS = 45.0
    assert (action_ack_timeout(), batch_ack_timeout()) == (45.0, 45.0)


def messages(kafka, n: int) -> list[Outbound]:
    return [Outbound(kafka.name("metrics"), {"id": i, "val": 1.0, "time": 1624378100 + i}, key=str(i))
            for i in range(n)]


def test_a_request_threads_wait_returns_once_the_broker_acknowledged_and_says_where(kafka):
    before, delivered = counted(), []
    assert publish_and_wait(messages(kafka, 3), timeout=30, delivered=delivered) == 3
    assert sorted(offset for _topic, _partition, offset in delivered) == [0, 1, 2]
    assert {topic for topic, _partition, _offset in delivered} == {kafka.name("metrics")}
    assert counted()["delivered"] - before.get("delivered", 0) == 3
    assert kafka.end_offsets("metrics") == 3


def test_a_coroutines_wait_returns_once_the_broker_acknowledged(kafka):
    assert asyncio.run(publish_and_wait_async(messages(kafka, 4), timeout=30)) == 4
    assert kafka.end_offsets("metrics") == 4


def test_a_batchs_wait_returns_once_the_broker_acknowledged(kafka):
    before = counted()
    assert produce_and_wait(iter(messages(kafka, 5)), timeout=30) == 5
    assert counted()["delivered"] - before.get("delivered", 0) == 5
    assert kafka.end_offsets("metrics") == 5


def test_every_wait_raises_when_the_broker_does_not_answer_in_time(kafka_down):
    out = [Outbound("metrics", {"id": 1})]
    started = time.monotonic()
    with pytest.raises(DeliveryError, match=r"Kafka did not acknowledge 1 of 1 message\(s\) within 1s"):
        publish_and_wait(out, timeout=1)
    with pytest.raises(DeliveryError, match=r"Kafka did not acknowledge 1 of 1 message\(s\) within 1s"):
        asyncio.run(publish_and_wait_async(out, timeout=1))
    with pytest.raises(DeliveryError, match=r"Kafka did not acknowledge 1 of 1 message\(s\) within 1s"):
        produce_and_wait(out, timeout=1)
    assert time.monotonic() - started < 10
