"""The web producer's deliveries are counted once per caller (streams/kafka/acks.py), and
every message is counted, whether its caller waited for it, gave up, or could not queue
them all. A fake producer: no broker."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException

from streams.kafka.acks import _Pending, _queue_all
from streams.kafka.producer import DeliveryError, Outbound, deliveries


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
