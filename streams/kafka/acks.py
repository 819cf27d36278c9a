"""Publish-and-wait for request threads: each caller waits for its own acks only.

`producer.produce_and_wait` flushes the whole producer, which is right for a
consumer forwarding a batch but wrong for a web process with many threads
publishing at once: under steady load the queue never drains, so every
request would wait for everyone else's messages. Here one background thread
per process serves delivery reports of the process's web producer, and each caller
waits on an event that its own last delivery report sets, with a deadline.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from django.conf import settings

from . import producer as producer_module
from .producer import DeliveryError, Outbound


class _Poller:
    def __init__(self, producer: Producer, config: dict) -> None:
        self.producer = producer
        self.config = config
        self.pid = os.getpid()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="kafka-ack-poller", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.producer.poll(0.05)
            except Exception:  # pragma: no cover - a poll error must not kill the thread
                time.sleep(0.05)


_poller: _Poller | None = None
_lock = threading.Lock()


def _web_config() -> dict:
    # The web process's own producer: the shared configuration with a linger
    # tuned for many small concurrent requests (API_KAFKA_LINGER_MS).
    config = producer_module.producer_config(**{"linger.ms": settings.API_KAFKA_LINGER_MS})
    config.pop("client.id", None)
    return config


def _current_poller() -> _Poller:
    """The poller and producer of this process (new after a fork or a configuration change)."""
    global _poller
    config = _web_config()
    poller = _poller
    if poller is None or poller.config != config or poller.pid != os.getpid():
        with _lock:
            poller = _poller
            if poller is None or poller.config != config or poller.pid != os.getpid():
                if poller is not None:
                    poller.stopped.set()
                producer = Producer({**config, "client.id": f"console-web-{os.getpid()}"})
                poller = _poller = _Poller(producer, config)
    return poller


class _Pending:
    __slots__ = ("count", "errors", "done", "lock")

    def __init__(self, count: int) -> None:
        self.count = count
        self.errors: list[str] = []
        self.done = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        producer_module.stats.record(err is None)
        with self.lock:
            if err is not None:
                self.errors.append(f"{msg.topic()}: {err.str()}")
            self.count -= 1
            if self.count <= 0:
                self.done.set()


def publish_and_wait(messages: Sequence[Outbound], *, timeout: float | None = None) -> int:
    """Queue `messages` and return once the broker acknowledged every one of them.

    Raises DeliveryError when a delivery failed or `timeout` seconds
    (KAFKA_PRODUCE_TIMEOUT_SECONDS by default) passed first."""
    if not messages:
        return 0
    timeout = settings.KAFKA_PRODUCE_TIMEOUT_SECONDS if timeout is None else timeout
    deadline = time.monotonic() + timeout
    poller = _current_poller()
    producer = poller.producer
    pending = _Pending(len(messages))
    for message in messages:
        while True:
            try:
                producer.produce(message.topic, value=message.encoded_value(), key=message.key,
                                 headers=message.headers, on_delivery=pending)
                break
            except KafkaException as exc:
                # E.g. an unknown topic: refused before anything was queued for this message.
                raise DeliveryError(f"cannot publish to {message.topic}: {exc.args[0].str()}") from None
            except BufferError:
                # The local queue is full (broker slow or down): wait for room, bounded.
                if time.monotonic() > deadline:
                    raise DeliveryError(
                        f"Kafka's local queue stayed full for {timeout:g}s "
                        f"(bootstrap servers {settings.KAFKA_BOOTSTRAP_SERVERS})"
                    ) from None
                time.sleep(0.01)
    if not pending.done.wait(max(deadline - time.monotonic(), 0.0)):
        raise DeliveryError(
            f"Kafka did not acknowledge {pending.count} of {len(messages)} message(s) within {timeout:g}s "
            f"(bootstrap servers {settings.KAFKA_BOOTSTRAP_SERVERS})"
        )
    if pending.errors:
        raise DeliveryError(f"{len(pending.errors)} of {len(messages)} message(s) failed: {pending.errors[0]}")
    return len(messages)
