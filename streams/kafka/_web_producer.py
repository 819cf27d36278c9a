"""The web producer: each caller waits for its own acknowledgements only.

Internal to the platform; callers use `producer.publish_and_wait` (request
threads) and `producer.publish_and_wait_async` (coroutines), and the front
door's docstring says why. Flushing one shared producer is right for a
consumer forwarding a batch but wrong for a process with many threads
publishing at once: under steady load the queue never drains, so every
request would wait for everyone else's messages. Here one background thread
per process serves the delivery reports of the process's web producer, and
each caller waits on an event that its own last delivery report sets, with a
deadline; a coroutine is woken through the event loop instead of a thread
event.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from django.conf import settings

from ._producing import DeliveryError, Outbound, producer_config, stats
from .headers import Headers
from .tracing import ambient_headers


class _Poller:
    def __init__(self, producer: Producer, config: dict) -> None:
        self.producer = producer
        self.config = config
        self.pid = os.getpid()
        self.settings: object = None  # the settings object `config` was built from (_current_poller)
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
    config = producer_config(**{"linger.ms": settings.API_KAFKA_LINGER_MS})
    config.pop("client.id", None)
    return config


def _current_poller() -> _Poller:
    """The poller and producer of this process (new after a fork or a configuration change).

    The configuration is built again only when the settings object changed (a test's
    override): building it costs more than the rest of a request's publishing."""
    global _poller
    poller = _poller
    if poller is not None and poller.settings is settings._wrapped and poller.pid == os.getpid():
        return poller
    config = _web_config()
    if poller is None or poller.config != config or poller.pid != os.getpid():
        with _lock:
            poller = _poller
            if poller is None or poller.config != config or poller.pid != os.getpid():
                if poller is not None:
                    poller.stopped.set()
                producer = Producer({**config, "client.id": f"console-web-{os.getpid()}"})
                poller = _poller = _Poller(producer, config)
    # Held, not just compared by id: a settings object freed and another made at its
    # address must not pass for it.
    poller.settings = settings._wrapped
    return poller


def warm_up(timeout: float = 5.0) -> None:
    """Create this process's web producer and connect it to the cluster now,
    so that the first request does not pay for the connection and the
    idempotent producer's id. Raises KafkaException if the cluster does not
    answer within `timeout` (the first request will try again)."""
    _current_poller().producer.list_topics(timeout=timeout)


def shut_down(timeout: float = 5.0) -> int:
    """Deliver what this process's web producer still holds and stop its
    poller; the number of messages left undelivered."""
    global _poller
    with _lock:
        poller, _poller = _poller, None
    if poller is None or poller.pid != os.getpid():
        return 0
    left = poller.producer.flush(timeout)
    poller.stopped.set()
    return left


class _Pending:
    """Counts one caller's outstanding delivery reports and calls `notify` once the last arrives.

    The deliveries are added to the process's counts once per caller, with the last report
    (or when the caller gives up queuing: `unqueued`), not per message: in multiprocess mode
    an increment writes to a shared file (1.7 against 0.6 us, measured), paid once per request.
    `delivered`, when given, receives (topic, partition, offset) of each acknowledged message."""

    __slots__ = ("count", "total", "errors", "notify", "lock", "delivered")

    def __init__(self, count: int, notify: Callable[[], None],
                 delivered: list[tuple[str, int, int]] | None = None) -> None:
        self.count = self.total = count
        self.errors: list[str] = []
        self.notify = notify
        self.lock = threading.Lock()
        self.delivered = delivered

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        with self.lock:
            if err is not None:
                self.errors.append(f"{msg.topic()}: {err.str()}")
            elif self.delivered is not None:
                self.delivered.append((msg.topic(), msg.partition(), msg.offset()))
            self.count -= 1
            last = self.count == 0
        if last:
            self._counted()
            self.notify()

    def unqueued(self, messages: int) -> None:
        """`messages` were never queued (the caller stopped): no report will come for them."""
        with self.lock:
            self.count -= messages
            self.total -= messages
            last = self.count == 0
        if last:
            self._counted()

    def _counted(self) -> None:
        stats.add(delivered=self.total - len(self.errors), failed=len(self.errors))


def _queue_full(timeout: float) -> DeliveryError:
    return DeliveryError(
        f"Kafka's local queue stayed full for {timeout:g}s "
        f"(bootstrap servers {settings.KAFKA_BOOTSTRAP_SERVERS})"
    )


def _produce(producer: Producer, message: Outbound, pending: _Pending, trace: Headers | None) -> bool:
    """Queue one message (with the caller's trace header `trace` when it has no headers of
    its own); False when the local queue is full (the caller waits for room, bounded)."""
    try:
        producer.produce(message.topic, value=message.encoded_value(), key=message.key,
                         headers=trace if message.headers is None else message.headers, on_delivery=pending)
        return True
    except KafkaException as exc:
        # E.g. an unknown topic: refused before anything was queued for this message.
        raise DeliveryError(f"cannot publish to {message.topic}: {exc.args[0].str()}") from None
    except BufferError:
        return False


def _outcome(pending: _Pending, total: int, timeout: float, acknowledged: bool) -> int:
    if not acknowledged:
        raise DeliveryError(
            f"Kafka did not acknowledge {pending.count} of {total} message(s) within {timeout:g}s "
            f"(bootstrap servers {settings.KAFKA_BOOTSTRAP_SERVERS})"
        )
    if pending.errors:
        raise DeliveryError(f"{len(pending.errors)} of {total} message(s) failed: {pending.errors[0]}")
    return total


def _queue_all(producer: Producer, messages: Sequence[Outbound], pending: _Pending, deadline: float,
               timeout: float) -> Iterator[None]:
    """Queue every message; yields each time the local queue is full, for the
    caller to wait a little (a sleep, or an await) before the next try. The messages
    left unqueued when it stops early are taken off `pending`."""
    queued = 0
    trace = ambient_headers()
    try:
        for message in messages:
            while not _produce(producer, message, pending, trace):
                if time.monotonic() > deadline:
                    raise _queue_full(timeout)
                yield
            queued += 1
    finally:  # refused, out of time, or the caller went away (a cancelled request)
        if queued < len(messages):
            pending.unqueued(len(messages) - queued)


def publish_and_wait(messages: Sequence[Outbound], *, timeout: float | None = None,
                     delivered: list[tuple[str, int, int]] | None = None) -> int:
    """Queue `messages` and return once the broker acknowledged every one of them.

    Raises DeliveryError when a delivery failed or `timeout` seconds
    (KAFKA_PRODUCE_TIMEOUT_SECONDS by default) passed first. `delivered`, when
    given, receives (topic, partition, offset) of each acknowledged message."""
    if not messages:
        return 0
    timeout = settings.KAFKA_PRODUCE_TIMEOUT_SECONDS if timeout is None else timeout
    deadline = time.monotonic() + timeout
    done = threading.Event()
    pending = _Pending(len(messages), done.set, delivered)
    for _ in _queue_all(_current_poller().producer, messages, pending, deadline, timeout):
        time.sleep(0.01)
    acknowledged = done.wait(max(deadline - time.monotonic(), 0.0))
    return _outcome(pending, len(messages), timeout, acknowledged)


def _resolve(done: asyncio.Future) -> None:
    if not done.done():  # the caller may have given up (cancelled) before the ack came
        done.set_result(None)


async def publish_and_wait_async(messages: Sequence[Outbound], *, timeout: float | None = None) -> int:
    """`publish_and_wait` for a coroutine: the event loop runs other requests while this one waits."""
    if not messages:
        return 0
    timeout = settings.KAFKA_PRODUCE_TIMEOUT_SECONDS if timeout is None else timeout
    deadline = time.monotonic() + timeout
    loop = asyncio.get_running_loop()
    # A bare future and asyncio.timeout: an Event and wait_for cost a task and a waiter more per request.
    done = loop.create_future()
    pending = _Pending(len(messages), lambda: loop.call_soon_threadsafe(_resolve, done))
    for _ in _queue_all(_current_poller().producer, messages, pending, deadline, timeout):
        await asyncio.sleep(0.01)
    try:
        async with asyncio.timeout(max(deadline - time.monotonic(), 0.0)):
            await done
        acknowledged = True
    except TimeoutError:
        acknowledged = False
    return _outcome(pending, len(messages), timeout, acknowledged)
