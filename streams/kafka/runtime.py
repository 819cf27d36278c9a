"""Runs a registered consumer on sentry-arroyo.

The arroyo pipeline for every consumer is

    decode (per message) -> batch (size/time) -> apply (one DB transaction)
        -> publish outbound + dead letters, wait for acks -> commit offsets

so offsets reach the broker only after the batch's transaction committed and
everything it produced was acknowledged. A crash anywhere before the commit
replays the batch; handlers write idempotently, so a replay changes nothing.

Faults (the rules are in faults.py): a message the database refuses is found
by bisecting the batch in savepoints and dead-lettered with the error, and the
rest of the batch is applied (`apply_isolating`). A transient fault or a
systemic one leaves the batch uncommitted; arroyo holds it while the runtime
backs off and tries again, and the heartbeat (heartbeat.py) says why.
Arroyo drives rebalances: on revocation it flushes the batch in flight through
the same steps before giving the partitions up, and on SIGTERM/SIGINT it stops
after that batch.

Long: the arroyo strategies and the steps between them are one loop, read in
order; the fault rules and the heartbeat live in their own modules.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from arroyo.backends.kafka import KafkaConsumer, KafkaPayload
from arroyo.backends.kafka.configuration import build_kafka_consumer_configuration
from arroyo.commit import IMMEDIATE
from arroyo.processing import StreamProcessor
from arroyo.processing.strategies import (
    BatchStep,
    CommitOffsets,
    ProcessingStrategy,
    ProcessingStrategyFactory,
    RunTask,
)
from arroyo.processing.strategies.batching import ValuesBatch
from arroyo.processing.strategies.healthcheck import Healthcheck
from arroyo.types import BrokerValue, Commit, Message, Partition, Topic
from django.conf import settings
import psycopg2
from arroyo.processing.strategies import MessageRejected as BackPressure
from arroyo.utils.retries import RetryException
from confluent_kafka import KafkaException
from django.db import close_old_connections, transaction

from .client import client_config
from .faults import Backoff, DlqLimit, SystemicFailure, describe, is_transient
from .heartbeat import Pulse
from .producer import Outbound, produce_and_wait
from .registry import BatchOutcome, ConsumerSpec, Envelope, MessageRejected, Rejection, record_dead_letters
from .topics import topic_name

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    batch_size: int
    batch_time_ms: int
    auto_offset_reset: str = "earliest"
    healthcheck_file: str | None = None


def decode_envelope(spec: ConsumerSpec, payload: KafkaPayload, value: BrokerValue[Any]) -> Envelope:
    envelope = Envelope(
        topic=value.partition.topic.name,
        partition=value.partition.index,
        offset=value.offset,
        key=payload.key,
        headers=list(payload.headers),
        raw=payload.value or b"",
        timestamp=value.timestamp,
    )
    try:
        envelope.value = spec.decode(envelope)
    except MessageRejected as exc:
        envelope.rejection = exc
    except Exception as exc:  # a decoder bug must not block the partition either
        logger.exception("consumer_decode_crashed consumer=%s", spec.name)
        envelope.rejection = MessageRejected(f"decoder error: {type(exc).__name__}: {exc}")
    return envelope


def dead_letter_message(spec: ConsumerSpec, rejection: Rejection) -> Outbound:
    """The dead-letter record: the original bytes, with origin and reason in headers."""
    env = rejection.envelope
    headers = [(k, v) for k, v in env.headers if not k.startswith("x-dlq-")]
    headers += [
        ("x-dlq-reason", rejection.reason.encode()[:1000]),
        ("x-dlq-consumer", spec.name.encode()),
        ("x-dlq-original-topic", env.topic.encode()),
        ("x-dlq-original-partition", str(env.partition).encode()),
        ("x-dlq-original-offset", str(env.offset).encode()),
    ]
    return Outbound(topic=topic_name(spec.dead_letter_topic), value=env.raw, key=env.key, headers=headers)


def _refusal(envelope: Envelope, exc: Exception) -> Rejection:
    """A message that failed on its own while its batch was applied: the error is the reason."""
    from django.db import DatabaseError

    error = describe(exc)
    origin = "refused by the database" if isinstance(exc, (DatabaseError, psycopg2.Error)) else "handler error"
    return Rejection(
        envelope=envelope,
        reason=f"{origin}: {error}",
        errors=[{"field": None, "rule": "database" if origin.startswith("refused") else "handler",
                 "message": error}],
    )


def _merge(first: BatchOutcome, second: BatchOutcome) -> BatchOutcome:
    return BatchOutcome(outbound=first.outbound + second.outbound, rejected=first.rejected + second.rejected,
                        applied=first.applied + second.applied)


def apply_isolating(spec: ConsumerSpec, envelopes: Sequence[Envelope]) -> tuple[BatchOutcome, list[Rejection]]:
    """Run the handler on `envelopes` in a savepoint; if it fails for a reason that is not
    transient, bisect: each half in its own savepoint, down to the single messages that
    fail on their own. Returns the merged outcome and those messages as refusals.

    A batch with one poison message costs about 2*log2(batch) extra handler calls; a
    clean batch costs one savepoint."""
    try:
        with transaction.atomic():
            return spec.handle_batch(envelopes), []
    except Exception as exc:
        if is_transient(exc):
            raise
        if len(envelopes) == 1:
            envelope = envelopes[0]
            logger.warning(
                "consumer_message_refused consumer=%s topic=%s partition=%s offset=%s error=%s",
                spec.name, envelope.topic, envelope.partition, envelope.offset, describe(exc),
            )
            return BatchOutcome(), [_refusal(envelope, exc)]
    middle = len(envelopes) // 2
    first, refused_first = apply_isolating(spec, envelopes[:middle])
    second, refused_second = apply_isolating(spec, envelopes[middle:])
    return _merge(first, second), refused_first + refused_second


@dataclass
class AppliedBatch:
    outcome: BatchOutcome
    refused: int  # messages the database (or the handler) refused, dead-lettered with the error


def apply_batch(spec: ConsumerSpec, envelopes: Sequence[Envelope], *, limit: DlqLimit | None = None) -> AppliedBatch:
    """Apply one batch: the handler and the dead-letter records in one transaction,
    then publish and wait for the broker.

    Messages that fail on their own are found by bisection and dead-lettered with
    the error; the rest of the batch is applied. Transient errors (database or broker
    away) and a systemic failure (`limit`) propagate, with nothing committed, for the
    caller to retry the whole batch after a backoff."""
    valid = [e for e in envelopes if e.rejection is None]
    decode_rejections = [
        Rejection(envelope=e, reason=e.rejection.reason, errors=e.rejection.errors)
        for e in envelopes
        if e.rejection is not None
    ]
    close_old_connections()
    with transaction.atomic():
        outcome, refused = apply_isolating(spec, valid) if valid else (BatchOutcome(), [])
        if limit is not None:
            limit.check(refused=len(refused), accepted=len(valid) - len(refused))
        outcome.rejected = decode_rejections + outcome.rejected + refused
        if outcome.rejected:
            record_dead_letters(consumer=spec.name, rejections=outcome.rejected)
    if limit is not None:
        limit.record(refused=len(refused), accepted=len(valid) - len(refused))
    outbound = outcome.outbound + [dead_letter_message(spec, r) for r in outcome.rejected]
    if outbound:
        produce_and_wait(outbound, timeout=max(settings.KAFKA_PRODUCE_TIMEOUT_SECONDS, 30.0))
    return AppliedBatch(outcome=outcome, refused=len(refused))


class _ApplyStep(ProcessingStrategy[ValuesBatch[Envelope]]):
    """Applies each batch, then hands it to CommitOffsets.

    When applying fails (PostgreSQL or Kafka away, a systemic failure, a bug), the
    batch is neither committed nor dropped: the step raises arroyo's MessageRejected,
    so arroyo holds the batch, pauses the partitions and keeps polling (the consumer
    stays in its group), and the batch is tried again after a backoff. Nothing is
    lost and the process never exits over it."""

    def __init__(self, owner: "_Strategy", next_step: ProcessingStrategy[Any]) -> None:
        self.owner = owner
        self.next_step = next_step

    def submit(self, message: Message[ValuesBatch[Envelope]]) -> None:
        owner = self.owner
        wait = owner.backoff.remaining()
        if wait > 0:
            if owner.stopping:
                return self._leave(message)
            time.sleep(min(wait, 0.05))
            raise BackPressure()
        try:
            owner.apply([v.payload for v in message.payload])
        except Exception as exc:
            owner.failed(exc)
            if owner.stopping:
                return self._leave(message)
            raise BackPressure() from exc
        owner.recovered()
        self.next_step.submit(message)

    def _leave(self, message: Message[ValuesBatch[Envelope]]) -> None:
        logger.warning("consumer_batch_left_uncommitted consumer=%s messages=%d (it is replayed on restart)",
                       self.owner.spec.name, len(message.payload))

    def poll(self) -> None:
        self.owner.pulse.beat()
        self.next_step.poll()

    def join(self, timeout: float | None = None) -> None:
        self.next_step.join(timeout)

    def close(self) -> None:
        self.next_step.close()

    def terminate(self) -> None:
        self.next_step.terminate()


class _SafeCommit(ProcessingStrategy[Any]):
    """CommitOffsets that outlives a broker restart.

    A commit refused because the broker is away, or because this member was dropped
    from the group meanwhile (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, NOT_COORDINATOR),
    is logged and let go: the batch is already applied, so its offsets go with the next
    commit that succeeds, or the batch is replayed (idempotently) by whoever owns the
    partition next. Raising instead would crash the consumer in arroyo's revocation
    callback, which is where a dropped member ends up."""

    def __init__(self, commit: Commit, consumer: str) -> None:
        self.inner = CommitOffsets(commit)
        self.consumer = consumer

    def _guard(self, call: Any, *args: Any) -> None:
        try:
            call(*args)
        except (KafkaException, RetryException) as exc:  # arroyo wraps a failed commit in RetryException
            logger.warning("consumer_commit_failed consumer=%s error=%s (applied; committed later or replayed)",
                           self.consumer, describe(exc))

    def submit(self, message: Message[Any]) -> None:
        self._guard(self.inner.submit, message)

    def poll(self) -> None:
        self._guard(self.inner.poll)

    def join(self, timeout: float | None = None) -> None:
        self._guard(self.inner.join, timeout)

    def close(self) -> None:
        self.inner.close()

    def terminate(self) -> None:
        self.inner.terminate()


class _Strategy(ProcessingStrategyFactory[KafkaPayload]):
    def __init__(self, spec: ConsumerSpec, options: RunOptions) -> None:
        self.spec = spec
        self.options = options
        self.totals = {"batches": 0, "messages": 0, "applied": 0, "rejected": 0}
        self.backoff = Backoff(cap=settings.CONSUMER_BACKOFF_MAX_SECONDS)
        self.limit = DlqLimit(max_consecutive=settings.CONSUMER_DLQ_MAX_CONSECUTIVE)
        self.pulse = Pulse(consumer=spec.name, group_id=spec.group_id(),
                           topics=[topic_name(t) for t in spec.topics])
        self.stopping = False

    def _decode(self, message: Message[KafkaPayload]) -> Envelope:
        value = message.value
        assert isinstance(value, BrokerValue)
        return decode_envelope(self.spec, message.payload, value)

    def apply(self, envelopes: list[Envelope]) -> None:
        started = time.monotonic()
        applied = apply_batch(self.spec, envelopes, limit=self.limit)
        outcome = applied.outcome
        self.totals["batches"] += 1
        self.totals["messages"] += len(envelopes)
        self.totals["applied"] += outcome.applied
        self.totals["rejected"] += len(outcome.rejected)
        self.pulse.batch_done(messages=len(envelopes), applied=outcome.applied,
                              dead_lettered=len(outcome.rejected), refused=applied.refused)
        logger.info(
            "consumer_batch consumer=%s messages=%d applied=%d rejected=%d refused=%d published=%d ms=%.1f",
            self.spec.name, len(envelopes), outcome.applied, len(outcome.rejected), applied.refused,
            len(outcome.outbound), (time.monotonic() - started) * 1000,
        )

    def failed(self, exc: Exception) -> None:
        """A batch could not be applied: back off, say why (logs, heartbeat)."""
        from django.db import connection

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
        try:
            connection.close()  # a broken connection is reopened on the next attempt
        except Exception:
            pass
        self.pulse.set_state(state, reason)
        if state == "paused" or self.backoff.failures == 1:
            self.pulse.beat(force=True)

    def recovered(self) -> None:
        if self.backoff.failures:
            logger.info("consumer_resumed consumer=%s after=%d attempts", self.spec.name, self.backoff.failures)
        self.backoff.reset()

    def create_with_partitions(
        self, commit: Commit, partitions: Mapping[Partition, int]
    ) -> ProcessingStrategy[KafkaPayload]:
        apply: ProcessingStrategy[Any] = _ApplyStep(self, _SafeCommit(commit, self.spec.name))
        batch = BatchStep(
            max_batch_size=self.options.batch_size,
            max_batch_time=self.options.batch_time_ms / 1000.0,
            next_step=apply,
        )
        decode: ProcessingStrategy[KafkaPayload] = RunTask(self._decode, batch)
        if self.options.healthcheck_file:
            # Touched on every poll while partitions are assigned: a liveness probe.
            return Healthcheck(self.options.healthcheck_file, decode)
        return decode


class _MultiTopicConsumer(KafkaConsumer):
    """Arroyo's StreamProcessor subscribes to one topic; some of our consumers
    read several (telemetry reads metrics and workorders), so subscribe to all.

    The processor also polls with a fixed 1 s timeout and only looks at the
    open batch between polls, so on a quiet topic a lone message waited up to
    1 s past --batch-time (a file event took 1.0 s to be registered). Polls
    are capped at `max_wait` seconds, which bounds that wait by the batch time."""

    def __init__(self, configuration: Mapping[str, Any], topics: Sequence[Topic], max_wait: float = 1.0) -> None:
        super().__init__(dict(configuration))
        self._all_topics = list(topics)
        self._max_wait = max_wait

    def poll(self, timeout: float | None = None):  # type: ignore[override]
        return super().poll(self._max_wait if timeout is None else min(timeout, self._max_wait))

    def subscribe(self, topics, on_assign=None, on_revoke=None) -> None:  # type: ignore[override]
        super().subscribe(self._all_topics, on_assign=on_assign, on_revoke=on_revoke)


def build_processor(spec: ConsumerSpec, options: RunOptions) -> tuple[StreamProcessor[KafkaPayload], _Strategy]:
    base = client_config()
    bootstrap = base.pop("bootstrap.servers")
    configuration = build_kafka_consumer_configuration(
        default_config=base,
        group_id=spec.group_id(),
        auto_offset_reset=options.auto_offset_reset,
        bootstrap_servers=bootstrap.split(","),
        enable_auto_commit=False,
        override_params={"client.id": f"console-{spec.name}"},
    )
    topics = [Topic(topic_name(t)) for t in spec.topics]
    consumer = _MultiTopicConsumer(configuration, topics,
                                   max_wait=min(max(options.batch_time_ms / 1000.0, 0.01), 1.0))
    factory = _Strategy(spec, options)
    processor = StreamProcessor(
        consumer=consumer,
        topic=topics[0],
        processor_factory=factory,
        commit_policy=IMMEDIATE,
        join_timeout=60.0,
    )
    return processor, factory


def run(spec: ConsumerSpec, options: RunOptions) -> dict[str, int]:
    """Run until SIGTERM/SIGINT; the batch in flight is applied and committed first.

    The process exits only on a signal or on a fault of the runtime itself (never
    because of a message): then its heartbeat says `crashed` with the error, and the
    supervisor starts it again."""
    processor, factory = build_processor(spec, options)

    def _stop(signum: int, _frame: Any) -> None:
        logger.info("consumer_stopping consumer=%s signal=%s", spec.name, signal.Signals(signum).name)
        factory.stopping = True
        processor.signal_shutdown()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    logger.info(
        "consumer_started consumer=%s group=%s topics=%s batch_size=%d batch_time_ms=%d",
        spec.name, spec.group_id(), ",".join(topic_name(t) for t in spec.topics),
        options.batch_size, options.batch_time_ms,
    )
    factory.pulse.beat(force=True)
    try:
        processor.run()
    except BaseException as exc:
        factory.pulse.set_state("crashed", describe(exc, 1000))
        factory.pulse.beat(force=True)
        raise
    factory.pulse.set_state("stopped", "")
    factory.pulse.beat(force=True)
    return factory.totals
