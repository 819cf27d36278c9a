"""The one front door for publishing to Kafka and waiting for the broker's acknowledgement.

Which function to use where:

* a request thread (a DRF view, an admin or console action), a Celery task, and
  a service any of these call, even when a command calls it too:
  `publish_and_wait`. It waits for this caller's
  own acknowledgements only, on the process's web producer, whose background
  thread serves the delivery reports (_web_producer.py). Many threads can
  publish at once, and none waits for another's messages.
* a coroutine (the ASGI hot path): `publish_and_wait_async`, the same wait
  awaited, so that the event loop serves other requests meanwhile.
* a consumer forwarding a batch (apply.py), a management command, a test:
  `produce_and_wait`. It flushes the process-wide producer (`get_producer`)
  until every message of the batch is acknowledged: the cheapest wait per
  message when this thread is the only one producing, and wrong in a web
  process, where the queue under load never drains and every request would
  wait for everyone else's messages.

Each returns only once the broker acknowledged every message, and raises
DeliveryError when one failed or the wait ran out. How long to wait is a rule
of its own: the endpoints wait KAFKA_PRODUCE_TIMEOUT_SECONDS (their 503 bound,
the default), an operator's action or a file's announcement
`action_ack_timeout()`, a batch `batch_ack_timeout()`.

Every message without headers of its own leaves with the caller's trace context
(tracing.py: the request's, the task's, the batch's), when there is one.

Every producer is idempotent with `acks=all` (_producing.py). Failed deliveries
are counted (`stats`, the prometheus counter `deliveries`) and logged, never
swallowed. `web_producer_warm_up` and `web_producer_shut_down` connect the web
producer when a worker starts and deliver what it holds when it stops.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence

from confluent_kafka import KafkaError, Message, Producer
from django.conf import settings

from ._producing import DeliveryError, DeliveryStats, Headers, Outbound, deliveries, producer_config, stats
from ._web_producer import publish_and_wait, publish_and_wait_async
from ._web_producer import shut_down as web_producer_shut_down
from .tracing import ambient_headers
from ._web_producer import warm_up as web_producer_warm_up

__all__ = [
    "DeliveryError", "DeliveryStats", "Headers", "Outbound", "action_ack_timeout", "batch_ack_timeout",
    "deliveries", "get_producer", "produce_and_wait", "producer_config", "publish_and_wait",
    "publish_and_wait_async", "stats", "web_producer_shut_down", "web_producer_warm_up",
]

logger = logging.getLogger(__name__)

# The least an operator's action and a batch wait for the broker, whatever
# KAFKA_PRODUCE_TIMEOUT_SECONDS says (it bounds the hot endpoints' 503, 5 s by default).
ACTION_ACK_FLOOR_SECONDS = 10.0
BATCH_ACK_FLOOR_SECONDS = 30.0


def action_ack_timeout() -> float:
    """How long an operator's action (a re-drive, a produced message) or a file's
    announcement waits for the broker: a few messages that an operator would
    rather see through than retry, so never less than 10 s."""
    return max(settings.KAFKA_PRODUCE_TIMEOUT_SECONDS, ACTION_ACK_FLOOR_SECONDS)


def batch_ack_timeout() -> float:
    """How long a batch (a consumer's outbound and dead letters, a command's
    chunk) waits for the broker: thousands of messages, so never less than 30 s."""
    return max(settings.KAFKA_PRODUCE_TIMEOUT_SECONDS, BATCH_ACK_FLOOR_SECONDS)


_producer: Producer | None = None
_producer_pid: int | None = None
_producer_lock = threading.Lock()


def get_producer() -> Producer:
    """The process-wide producer that `produce_and_wait` flushes, rebuilt after a fork
    (gunicorn, Celery prefork)."""
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


def produce_and_wait(
    messages: Sequence[Outbound] | Iterable[Outbound],
    *,
    timeout: float | None = None,
    producer: Producer | None = None,
) -> int:
    """Publish messages and return once the broker acknowledged all of them, flushing
    the process-wide producer: for a consumer's batch or a command, never a request
    thread (this module's docstring says why).

    Raises DeliveryError if any delivery failed or `timeout` seconds
    (KAFKA_PRODUCE_TIMEOUT_SECONDS by default) passed.

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
            return
        _on_delivery(err, msg)
        state["failed"] += 1
        errors.append(f"{msg.topic()}: {err.str()}")

    send = producer.produce
    trace = ambient_headers()  # the batch's, the command's: on messages without headers of their own
    sent = 0
    try:
        for message in messages:
            value = message.encoded_value()
            while True:
                try:
                    send(message.topic, value=value, key=message.key,
                         headers=trace if message.headers is None else message.headers, on_delivery=on_delivery)
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
