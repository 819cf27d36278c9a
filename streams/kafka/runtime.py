"""Runs a registered consumer: a batch loop over confluent-kafka's `consume()`.

    consume(num_messages=N) until the batch is full or its time is up
        -> decode each message (apply.decode_message)
        -> apply the batch (apply.apply_batch: one DB transaction, then the
           outbound and dead letters published and acknowledged)
        -> commit the offsets after the batch

so offsets reach the broker only after the batch's transaction committed and
everything it produced was acknowledged. A crash anywhere before the commit
replays the batch; handlers write idempotently, and a consumer with
`offsets_in_db` skips what its transaction already applied (offsets.py).

The loop holds no per-message framework: librdkafka hands over whole arrays,
and the work per message is the consumer's own decode. docs/kafka.md gives
the figures that chose this over arroyo's strategies.

Two batches overlap: while one is applied by the apply thread (a single
worker with its own database connection: the transaction, the publishing and
the acks, which wait on PostgreSQL and the broker with the GIL released), the
loop consumes and decodes the next. The first batch's offsets are committed
to Kafka when it has landed (its transaction committed and its messages
acknowledged), before the next batch is handed over; so commits still follow
the effects, in order, and at most one batch is in flight. Everything that
touches the database for the consumer (batches, the tick, closing a broken
connection) runs on that thread, one thing at a time.

Faults: when a batch cannot be applied (PostgreSQL or Kafka away, a systemic
failure, a bug), it is held, neither committed nor dropped. The assigned
partitions are paused, so the loop keeps calling `consume()` (the member
stays in its group and rebalances are served) without fetching, and the batch
is tried again after a backoff (faults.py); the heartbeat (heartbeat.py) says
why. A commit the broker refuses (it is away, or this member was dropped from
the group meanwhile) is logged and let go: the batch is applied, so its
offsets go with the next commit, or the next owner replays it idempotently.

Rebalances are incremental (cooperative-sticky; docs/kafka.md has the figures
that chose it): a member joining or leaving moves only the partitions that
change owner, and the others keep flowing. When partitions are revoked, the
batch in flight is applied and committed first, in the callback; what cannot
be applied then is let go uncommitted for the revoked partitions (the next
owner replays it) and kept, still held, for the partitions this member keeps.
Lost partitions (the member was dropped) commit nothing. With an instance id
the member is static: a crashed process restarted with the same id gets its
partitions back without a rebalance. A fatal error of the group (another
process took this instance id) stops the process with the reason. On
SIGTERM/SIGINT the loop stops after the batch in flight.

Progress: per assigned partition the loop knows the offset after what it
took and, from librdkafka's cached high watermark, whether everything there
is applied. A consumer with a `tick` gets that (`PartitionProgress`) on every
tick: event time (streams/orders) lets a partition stop holding the watermark
back only when it is caught up, never because its reader stopped.

Long: the loop, its rebalance callbacks and its held-batch state act on one
consumer and one set of per-partition positions (next_offset, skip_below,
stale); split apart, each would reach into the others' fields. What keeps a
state of its own lives beside it: the commits (commits.py), the fault rules
(faults.py), the heartbeat (heartbeat.py), applying a batch (apply.py).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, TopicPartition
from django.conf import settings
from django.db import close_old_connections, connection

from . import offsets
from .apply import apply_batch, apply_tick, decode_message
from .client import client_config, describe
from .commits import CommitLedger
from .faults import Backoff, DlqLimit, SystemicFailure, fault_point, is_transient
from .heartbeat import Pulse
from .registry import ConsumerSpec, Envelope, PartitionProgress
from .startup import prepare_process
from .topics import topic_name

logger = logging.getLogger(__name__)

Key = tuple[str, int]  # (topic, partition)


@dataclass(frozen=True)
class RunOptions:
    batch_size: int
    batch_time_ms: int
    auto_offset_reset: str = "earliest"
    healthcheck_file: str | None = None
    instance_id: str = ""  # static membership when set (stable across restarts of this replica)


def instance_id(spec: ConsumerSpec, given: str) -> str:
    """The member's `group.instance.id`: `<group>-<given>`, where `{hostname}` in `given` is
    this host's name (a compose replica's container). Empty: a dynamic member."""
    if not given:
        return ""
    return f"{spec.group_id()}-{given.replace('{hostname}', socket.gethostname())}"[:240]


def consumer_config(spec: ConsumerSpec, options: RunOptions) -> dict[str, Any]:
    config = {
        "group.id": spec.group_id(),
        "client.id": f"console-{spec.name}",
        "auto.offset.reset": options.auto_offset_reset,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": False,
        # librdkafka prefetches whole batches in its own thread: a full batch is usually waiting.
        "queued.min.messages": max(options.batch_size * 2, 10000),
    }
    membership = {
        # Incremental rebalances: the members that keep their partitions never stop.
        "partition.assignment.strategy": "cooperative-sticky",
        "session.timeout.ms": settings.CONSUMER_SESSION_TIMEOUT_MS,
        "heartbeat.interval.ms": max(1000, settings.CONSUMER_SESSION_TIMEOUT_MS // 10),
    }
    # KAFKA_CLIENT_CONFIG may still set these (a cluster with its own limits); it wins.
    config.update({k: v for k, v in membership.items() if k not in settings.KAFKA_CLIENT_CONFIG})
    member = instance_id(spec, options.instance_id)
    if member:
        config["group.instance.id"] = member
    return client_config(**config)


class GroupFenced(Exception):
    """A fatal error of the group membership: another process uses this instance id."""


class BatchLoop:
    """One consumer process: its Kafka consumer, the batch in flight and its fault state."""

    def __init__(self, spec: ConsumerSpec, options: RunOptions) -> None:
        self.spec = spec
        self.options = options
        self.topics = [topic_name(t) for t in spec.topics]
        self.commits = CommitLedger(spec.name)
        self.consumer = Consumer({**consumer_config(spec, options), "on_commit": self.commits.on_commit})
        self.commits.consumer = self.consumer
        self.totals = {"batches": 0, "messages": 0, "applied": 0, "rejected": 0}
        self.backoff = Backoff(cap=settings.CONSUMER_BACKOFF_MAX_SECONDS)
        self.limit = DlqLimit(max_consecutive=settings.CONSUMER_DLQ_MAX_CONSECUTIVE)
        self.pulse = Pulse(consumer=spec.name, group_id=spec.group_id(), topics=self.topics,
                           instance_id=instance_id(spec, options.instance_id))
        self.stopping = False
        self.pending: list[Envelope] = []  # consumed, not yet applied
        # The batch being applied on the apply thread: (batch, its future, when it was handed over).
        self.flight: tuple[list[Envelope], Future, float] | None = None
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"apply-{spec.name}")
        self.held = False  # the pending batch failed and waits for a retry (partitions paused)
        self.next_offset: dict[Key, int] = {}  # per assigned partition: the offset after what we took
        self.skip_below: dict[Key, int] = {}  # offsets_in_db: what the database says is applied
        self.in_revoke = False  # commits are synchronous in a revoke (the partitions go right after)
        self.stale: set[Key] = set()  # partitions that delivered while paused: seek back on resume
        self.partitions: dict[str, int] = {}  # input topic -> partition count (metadata, for the tick)
        self.partitions_checked = 0.0
        self.last_tick = 0.0  # the first step ticks: a member reports its partitions before its first batch
        self.last_health = 0.0

    # ---------------------------------------------------------------- rebalance callbacks

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions added to this member (incremental: the ones it had stay as they are)."""
        keys = [(p.topic, p.partition) for p in partitions]
        if not partitions:
            return
        stored = self._db_positions(keys) if self.spec.offsets_in_db else {}
        ahead: dict[Key, int] = {}
        try:
            committed = {(p.topic, p.partition): p.offset for p in consumer.committed(partitions, timeout=10)}
        except KafkaException as exc:  # the start positions are then learnt from the first messages
            logger.warning("consumer_committed_unknown consumer=%s error=%s", self.spec.name, describe(exc))
            committed = {}
        for p in partitions:
            key = (p.topic, p.partition)
            start = committed.get(key, OFFSET_INVALID)
            if key in stored and stored[key] > start:
                p.offset = start = stored[key]  # applied in PostgreSQL, not yet committed to Kafka
                self.skip_below[key] = ahead[key] = stored[key]
            if start >= 0:
                self.next_offset[key] = start  # nothing taken yet: the progress starts here
        consumer.incremental_assign(partitions)
        self.commits.assign(keys, stored_ahead=ahead)  # committed on the next beat, even on a quiet topic
        self.last_tick = 0.0  # report the new partitions (PartitionProgress) before their first batch
        self.pulse.set_partitions([(p.topic, p.partition) for p in consumer.assignment()])
        logger.info("consumer_assigned consumer=%s partitions=%s", self.spec.name,
                    ",".join(f"{t}[{p}]" for t, p in keys))

    def _db_positions(self, keys: list[Key]) -> dict[Key, int]:
        for attempt in range(30):
            try:
                close_old_connections()
                return offsets.positions(self.spec.group_id(), keys)
            except Exception as exc:
                if not is_transient(exc) or attempt == 29:
                    raise
                logger.warning("consumer_positions_waiting consumer=%s error=%s", self.spec.name, describe(exc))
                connection.close()
                time.sleep(min(2.0, 0.1 * 2 ** attempt))
        return {}

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """The partitions are already someone else's (the member was dropped): let the batch go."""
        self._on_revoke(consumer, partitions, lost=True)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition], lost: bool = False) -> None:
        """Partitions taken from this member: what it took from them is applied and committed
        first; what cannot be is let go for their next owner, and kept (held) for the rest."""
        if not partitions:
            return
        if (self.pending or self.flight) and not self.held and not lost:
            self.in_revoke = True
            try:
                self._apply_and_commit()  # the batches in flight go first, as the partitions go
            finally:
                self.in_revoke = False
        if self.flight is not None:  # lost, or held: it finishes, its offsets are not committed
            batch, future, _started = self.flight
            self.flight = None
            self.pending = batch + self.pending
            try:
                future.result()
            except Exception as exc:
                logger.warning("consumer_batch_failed_on_loss consumer=%s error=%s", self.spec.name, describe(exc))
            self.held = True  # applied or not, nothing of it is committed now: the kept part is retried
        gone = {(p.topic, p.partition) for p in partitions}
        if lost:
            gone |= {(p.topic, p.partition) for p in consumer.assignment()}
        left = [e for e in self.pending if (e.topic, e.partition) in gone]
        if left:
            logger.warning("consumer_batch_left_uncommitted consumer=%s messages=%d (the next owner replays it)",
                           self.spec.name, len(left))
        self.pending = [e for e in self.pending if (e.topic, e.partition) not in gone]
        for key in gone:
            self.next_offset.pop(key, None)
            self.skip_below.pop(key, None)
            self.stale.discard(key)
        self.commits.forget(gone)
        if not self.pending and self.held:
            self.held = False  # nothing left to retry: the partitions kept flow again
            kept = [p for p in consumer.assignment() if (p.topic, p.partition) not in gone]
            if kept:
                consumer.resume(kept)
        self.pulse.set_partitions([(p.topic, p.partition) for p in consumer.assignment()
                                   if (p.topic, p.partition) not in gone])
        logger.info("consumer_revoked consumer=%s partitions=%s lost=%s", self.spec.name,
                    ",".join(f"{t}[{p}]" for t, p in sorted(gone)), lost)

    # ---------------------------------------------------------------------------- loop

    def run(self) -> dict[str, int]:
        self.consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_lost)
        self.pulse.beat(force=True)
        try:
            while not self.stopping:
                self._step()
            if (self.pending or self.flight) and not self.held:
                self._apply_and_commit()
            self.commits.send_due(synchronous=True)
            if self.pending:
                logger.warning("consumer_batch_left_uncommitted consumer=%s messages=%d (it is replayed on restart)",
                               self.spec.name, len(self.pending))
        finally:
            try:
                if self.flight is not None:  # a fault of the loop itself: let the apply thread finish
                    self.flight[1].exception()
                self._on_worker(connection.close)
            finally:
                self.worker.shutdown(wait=True)
                self.consumer.close()
        return self.totals

    def _step(self) -> None:
        self._touch_healthcheck()
        self.pulse.beat()
        self.commits.send_due()
        if self.held:
            return self._retry_held()
        self._fill()  # while the previous batch is applied on the apply thread
        self._land()
        if self.held:
            return
        self._maybe_tick()
        if self.pending:
            self._launch()

    def _fill(self) -> None:
        """Take messages until the batch is full or its time is up.

        The time runs from the start of the first `consume()` call that returned
        messages: librdkafka's batch call waits for `num_messages` or its timeout,
        so the messages it returns may have waited that long already (counted
        from its return, a large --batch-size would double a batch's wait at a
        moderate rate)."""
        size, started = self.options.batch_size, None
        window = self.options.batch_time_ms / 1000.0
        while len(self.pending) < size and not self.stopping:
            wait = window if started is None else window - (time.monotonic() - started)
            if wait <= 0:
                break
            called = time.monotonic()
            messages = self.consumer.consume(num_messages=size - len(self.pending), timeout=min(wait, 1.0))
            if messages:
                started = started or called
                self._take(messages)
            elif started is None:
                break  # a quiet topic: let the loop beat, tick and look at the stop flag

    def _take(self, messages: list[Any]) -> None:
        decode, spec = decode_message, self.spec
        skip = self.skip_below
        for message in messages:
            error = message.error()
            if error is not None:
                _raise_if_fatal(error)
                if error.code() != KafkaError._PARTITION_EOF:
                    logger.warning("consumer_fetch_error consumer=%s error=%s", spec.name, error)
                continue
            key = (message.topic(), message.partition())
            offset = message.offset()
            if skip and offset < skip.get(key, -1):
                continue  # applied in PostgreSQL before a crash: never twice
            self.next_offset[key] = offset + 1
            self.pending.append(decode(spec, message))

    def _launch(self) -> None:
        """Hand the pending batch to the apply thread (nothing else is in flight)."""
        batch, self.pending = self.pending, []
        self.flight = (batch, self.worker.submit(_timed_apply, self.spec, batch, self.limit), time.monotonic())

    def _apply_and_commit(self) -> None:
        """Land the batch in flight, then apply the pending one and land it: nothing is left in flight."""
        self._land()
        if self.pending and not self.held:
            self._launch()
            self._land()

    def _land(self) -> None:
        """Wait for the batch in flight; commit its offsets, or hold it (with what was consumed since)."""
        if self.flight is None:
            return
        batch, future, _launched = self.flight
        self.flight = None
        try:
            applied, seconds = future.result()
        except Exception as exc:
            self.pending = batch + self.pending
            self._failed(exc)
            self._hold()
            return
        self._recovered()
        self._commit(batch)
        outcome = applied.outcome
        self.totals["batches"] += 1
        self.totals["messages"] += len(batch)
        self.totals["applied"] += outcome.applied
        self.totals["rejected"] += len(outcome.rejected)
        self.pulse.batch_done(messages=len(batch), applied=outcome.applied,
                              dead_lettered=len(outcome.rejected), refused=applied.refused,
                              seconds=seconds)
        logger.info(
            "consumer_batch consumer=%s messages=%d applied=%d rejected=%d refused=%d published=%d ms=%.1f",
            self.spec.name, len(batch), outcome.applied, len(outcome.rejected), applied.refused,
            len(outcome.outbound), seconds * 1000,
        )

    def _commit(self, batch: list[Envelope]) -> None:
        ends: dict[Key, int] = {}
        for e in batch:
            ends[(e.topic, e.partition)] = max(ends.get((e.topic, e.partition), 0), e.offset + 1)
        fault_point("before_kafka_commit")
        self.commits.commit(ends, synchronous=self.in_revoke or self.stopping)

    # --------------------------------------------------------------------- held batches

    def _hold(self) -> None:
        """Keep the failed batch; pause fetching so `consume()` only serves the group."""
        if not self.held:
            self.held = True
            assignment = self.consumer.assignment()
            if assignment:
                self.consumer.pause(assignment)

    def _retry_held(self) -> None:
        wait = self.backoff.remaining()
        if wait > 0:
            for message in self.consumer.consume(num_messages=100, timeout=min(wait, 0.2)):
                if message.error() is not None:
                    _raise_if_fatal(message.error())
                else:  # fetched before the pause took hold: taken again later
                    key = (message.topic(), message.partition())
                    self.next_offset.setdefault(key, message.offset())
                    self.stale.add(key)
            return
        if self.stopping:
            return
        self.held = False
        self._apply_and_commit()
        if not self.held:
            self._resume()

    def _resume(self) -> None:
        assignment = self.consumer.assignment()
        for key in self.stale:
            if key in self.next_offset:
                self.consumer.seek(TopicPartition(key[0], key[1], self.next_offset[key]))
        self.stale.clear()
        if assignment:
            self.consumer.resume(assignment)

    def _failed(self, exc: Exception) -> None:
        """A batch could not be applied: back off, say why (logs, heartbeat)."""
        delay = self.backoff.fail()
        if isinstance(exc, SystemicFailure):
            state, what = "paused", "consumer_paused"
        elif is_transient(exc):
            state, what = "waiting", "consumer_waiting"
        else:
            state, what = "paused", "consumer_batch_failed"
        reason = describe(exc, 1000)
        log = logger.exception if state == "paused" and not isinstance(exc, SystemicFailure) else logger.warning
        log("%s consumer=%s attempt=%d retry_in=%.1fs reason=%s", what, self.spec.name,
            self.backoff.failures, delay, reason)
        self._on_worker(connection.close)  # a broken connection is reopened on the next attempt
        self.pulse.set_state(state, reason)
        if state == "paused" or self.backoff.failures == 1:
            self.pulse.beat(force=True)

    def _recovered(self) -> None:
        if self.backoff.failures:
            logger.info("consumer_resumed consumer=%s after=%d attempts", self.spec.name, self.backoff.failures)
        self.backoff.reset()

    # ----------------------------------------------------------------- clock and health

    def _maybe_tick(self) -> None:
        if self.spec.tick is None or time.monotonic() - self.last_tick < settings.CONSUMER_TICK_SECONDS:
            return
        self.last_tick = time.monotonic()
        try:
            self.worker.submit(apply_tick, self.spec, self._progress()).result()
        except Exception as exc:  # the next tick tries again; a tick never stops the consumer
            logger.warning("consumer_tick_failed consumer=%s error=%s", self.spec.name, describe(exc))
            self._on_worker(connection.close)

    def _progress(self) -> PartitionProgress:
        """Which assigned partitions are applied up to their end (librdkafka's cached high
        watermark, refreshed by every fetch response: no broker call), and every partition
        of the input topics (metadata, looked up at most every 30 s)."""
        busy = {(e.topic, e.partition) for e in self.pending}
        caught, behind = [], []
        for tp in self.consumer.assignment():
            key = (tp.topic, tp.partition)
            try:
                low, high = self.consumer.get_watermark_offsets(tp, cached=True)
            except KafkaException:
                low = high = OFFSET_INVALID
            position = self.next_offset.get(key)
            at_end = high >= 0 and (position >= high if position is not None else low == high)
            (caught if at_end and key not in busy else behind).append(key)
        if time.monotonic() - self.partitions_checked > 30.0 or not self.partitions:
            self.partitions_checked = time.monotonic()
            for topic in self.topics:
                try:
                    meta = self.consumer.list_topics(topic, timeout=2).topics.get(topic)
                except KafkaException:
                    continue
                if meta is not None and meta.error is None and meta.partitions:
                    self.partitions[topic] = len(meta.partitions)
        every = tuple((t, p) for t, n in sorted(self.partitions.items()) for p in range(n))
        return PartitionProgress(caught_up=tuple(sorted(caught)), behind=tuple(sorted(behind)), partitions=every)

    def _on_worker(self, fn: Any) -> None:
        """Run `fn` on the apply thread (its database connection is that thread's), ignoring errors."""
        try:
            self.worker.submit(fn).result()
        except Exception:
            pass

    def _touch_healthcheck(self) -> None:
        path = self.options.healthcheck_file
        if path and time.monotonic() - self.last_health >= 1.0:
            self.last_health = time.monotonic()
            Path(path).touch()


def _raise_if_fatal(error: KafkaError) -> None:
    """A fatal error of the client (another process took this static member's instance id):
    this process cannot consume any more; it stops, its heartbeat says why."""
    if error.fatal() or error.code() == KafkaError._FATAL:
        raise GroupFenced(f"the consumer group refused this member: {error.str()} (is another process "
                          "running with the same --instance-id / CONSUMER_INSTANCE_ID?)")


def _timed_apply(spec: ConsumerSpec, batch: list[Envelope], limit: DlqLimit) -> tuple[Any, float]:
    """apply_batch on the apply thread, with how long it took (the heartbeat's batch seconds)."""
    started = time.monotonic()
    applied = apply_batch(spec, batch, limit=limit)
    return applied, time.monotonic() - started


def run(spec: ConsumerSpec, options: RunOptions) -> dict[str, int]:
    """Run until SIGTERM/SIGINT; the batch in flight is applied and committed first.

    The process exits only on a signal or on a fault of the runtime itself (never
    because of a message): then its heartbeat says `crashed` with the error, and the
    supervisor starts it again."""
    loop = BatchLoop(spec, options)

    def _stop(signum: int, _frame: Any) -> None:
        logger.info("consumer_stopping consumer=%s signal=%s", spec.name, signal.Signals(signum).name)
        loop.stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    prepare_process(settings.CONSUMER_GC_THRESHOLD)
    logger.info(
        "consumer_started consumer=%s group=%s topics=%s batch_size=%d batch_time_ms=%d pid=%d instance=%s",
        spec.name, spec.group_id(), ",".join(loop.topics), options.batch_size, options.batch_time_ms, os.getpid(),
        instance_id(spec, options.instance_id) or "-",
    )
    try:
        totals = loop.run()
    except BaseException as exc:
        loop.pulse.set_state("crashed", describe(exc, 1000))
        loop.pulse.beat(force=True)
        raise
    loop.pulse.set_state("stopped", "")
    loop.pulse.beat(force=True)
    return totals
