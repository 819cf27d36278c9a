"""The one producer factory of the console.

Every producer is idempotent with `acks=all`. Deliveries are checked through
delivery reports: failures are counted and logged, never swallowed. The counts
(`stats`) are a prometheus_client counter, so that /metrics adds up every web
worker's in multiprocess mode (gunicorn.conf.py, docs/operations.md).
`produce_and_wait` is for callers that must not answer before the broker has
acknowledged (REST endpoints, consumers forwarding to another topic).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import KafkaError, Message, Producer
from django.conf import settings
from prometheus_client import Counter

from .client import client_config

logger = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]
_ENCODING = orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


class DeliveryError(Exception):
    """The broker did not acknowledge every message in time."""


# Not in prometheus_client's default registry: console.ops.metrics exports it, this process's
# own or, under gunicorn, every worker's (each writes its counts to a file of
# PROMETHEUS_MULTIPROC_DIR, which must be set before prometheus_client is imported).
deliveries = Counter("console_producer_deliveries", "Messages the broker acknowledged (delivered) or refused "
                     "(failed) to the web process's producers, all workers.", ["outcome"], registry=None)


class DeliveryStats:
    """This process's deliveries, counted in `deliveries`."""

    def __init__(self) -> None:
        self._delivered = deliveries.labels("delivered")
        self._failed = deliveries.labels("failed")

    def record(self, ok: bool) -> None:
        (self._delivered if ok else self._failed).inc()

    def add(self, *, delivered: int = 0, failed: int = 0) -> None:
        if delivered:
            self._delivered.inc(delivered)
        if failed:
            self._failed.inc(failed)


stats = DeliveryStats()


# Slotted, not frozen: one is built per forwarded message, and a frozen dataclass's
# __init__ cost twice as much (1.1 against 0.5 us).
@dataclass(slots=True)
class Outbound:
    """A message to publish: topic name, value (bytes or JSON-able), key, headers."""

    topic: str
    value: bytes | dict[str, Any] | list[Any]
    key: bytes | str | None = None
    headers: Headers | None = None

    def encoded_value(self) -> bytes:
        if isinstance(self.value, bytes):
            return self.value
        # orjson, several times cheaper than json.dumps per message. Datetimes are written
        # in C as ISO 8601, a UTC one as decoding.iso writes it (with a `Z`; naive means
        # UTC); Decimals by str(), as json.dumps(default=str) did.
        return orjson.dumps(self.value, default=str, option=_ENCODING)


_producer: Producer | None = None
_producer_pid: int | None = None
_producer_lock = threading.Lock()


def producer_config(**overrides: Any) -> dict[str, Any]:
    return client_config(
        **{
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            "message.timeout.ms": 30000,
            "client.id": f"console-{os.getpid()}",
            **overrides,
        }
    )


def get_producer() -> Producer:
    """A process-wide producer, rebuilt after a fork (gunicorn, Celery prefork)."""
    global _producer, _producer_pid
    pid = os.getpid()
    if _producer is None or _producer_pid != pid:
        with _producer_lock:
            if _producer is None or _producer_pid != pid:
                _producer = Producer(producer_config())
                _producer_pid = pid
    return _producer


def _on_delivery(err: KafkaError | None, msg: Message) -> None:
    stats.record(err is None)
    if err is not None:
        logger.error(
            "kafka_delivery_failed topic=%s key=%r error=%s", msg.topic(), msg.key(), err
        )


def produce(message: Outbound, *, producer: Producer | None = None, on_delivery=None) -> None:
    """Queue one message; the delivery report is checked in the background."""
    producer = producer or get_producer()
    callback = on_delivery or _on_delivery
    while True:
        try:
            producer.produce(
                message.topic,
                value=message.encoded_value(),
                key=message.key,
                headers=message.headers,
                on_delivery=callback,
            )
            break
        except BufferError:
            # The local queue is full: serve delivery reports to make room.
            producer.poll(0.1)
    producer.poll(0)


def produce_and_wait(
    messages: Sequence[Outbound] | Iterable[Outbound],
    *,
    timeout: float | None = None,
    producer: Producer | None = None,
    delivered: list[tuple[str, int, int]] | None = None,
) -> int:
    """Publish messages and return once the broker acknowledged all of them.

    Raises DeliveryError if any delivery failed or `timeout` seconds passed.
    `delivered`, when given, receives (topic, partition, offset) of each acknowledged message.

    The hot path of every forwarding consumer: the messages are queued without
    a poll each (delivery reports are served while waiting), and the report of
    each delivered message only counts it; failures are logged one by one.
    """
    timeout = settings.KAFKA_PRODUCE_TIMEOUT_SECONDS if timeout is None else timeout
    producer = producer or get_producer()
    state = {"acked": 0, "failed": 0, "returned": False}
    errors: list[str] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is None:
            if state["returned"]:  # acknowledged after the caller gave up waiting
                stats.add(delivered=1)
            else:
                state["acked"] += 1
                if delivered is not None:
                    delivered.append((msg.topic(), msg.partition(), msg.offset()))
            return
        _on_delivery(err, msg)
        state["failed"] += 1
        errors.append(f"{msg.topic()}: {err.str()}")

    send = producer.produce
    sent = 0
    try:
        for message in messages:
            value = message.encoded_value()
            while True:
                try:
                    send(message.topic, value=value, key=message.key, headers=message.headers,
                         on_delivery=on_delivery)
                    break
                except BufferError:
                    # The local queue is full: serve delivery reports to make room.
                    producer.poll(0.1)
            sent += 1
        deadline = time.monotonic() + timeout
        while state["acked"] + state["failed"] < sent:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeliveryError(
                    f"Kafka did not acknowledge {sent - state['acked'] - state['failed']} of {sent} message(s) "
                    f"within {timeout:g}s (bootstrap servers {settings.KAFKA_BOOTSTRAP_SERVERS})"
                )
            producer.flush(min(remaining, 0.5))
    finally:
        state["returned"] = True
        stats.add(delivered=state["acked"])
    if errors:
        raise DeliveryError(f"{len(errors)} of {sent} message(s) failed: {errors[0]}")
    return sent
