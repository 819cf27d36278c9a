"""Runs a registered consumer on sentry-arroyo.

The arroyo pipeline for every consumer is

    decode (per message) -> batch (size/time) -> apply (one DB transaction)
        -> publish outbound + dead letters, wait for acks -> commit offsets

so offsets reach the broker only after the batch's transaction committed and
everything it produced was acknowledged. A crash anywhere before the commit
replays the batch; handlers write idempotently, so a replay changes nothing.
Arroyo drives rebalances: on revocation it flushes the batch in flight through
the same steps before giving the partitions up, and on SIGTERM/SIGINT it stops
after that batch.
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
from django.db import InterfaceError, OperationalError, close_old_connections, transaction

from .client import client_config
from .producer import Outbound, produce_and_wait
from .registry import BatchOutcome, ConsumerSpec, Envelope, MessageRejected, Rejection
from .topics import topic_name

logger = logging.getLogger(__name__)

REPLAY_COUNT_HEADER = "x-replay-count"


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


def apply_batch(spec: ConsumerSpec, envelopes: Sequence[Envelope]) -> BatchOutcome:
    """Apply one batch: the handler and the dead-letter records in one transaction,
    then publish and wait for the broker. Transient database errors are retried."""
    from quarantine.services import quarantine_dead_letters

    valid = [e for e in envelopes if e.rejection is None]
    decode_rejections = [
        Rejection(envelope=e, reason=e.rejection.reason, errors=e.rejection.errors)
        for e in envelopes
        if e.rejection is not None
    ]
    attempt = 0
    while True:
        try:
            close_old_connections()
            with transaction.atomic():
                outcome = spec.handle_batch(valid) if valid else BatchOutcome()
                outcome.rejected = decode_rejections + outcome.rejected
                if outcome.rejected:
                    quarantine_dead_letters(consumer=spec.name, rejections=outcome.rejected)
            break
        except (OperationalError, InterfaceError) as exc:
            attempt += 1
            if attempt > settings.CONSUMER_DB_RETRIES:
                raise
            delay = min(0.5 * 2**attempt, 10.0)
            logger.warning(
                "consumer_db_retry consumer=%s attempt=%d delay=%.1fs error=%s",
                spec.name, attempt, delay, exc,
            )
            from django.db import connection

            connection.close()
            time.sleep(delay)
    outbound = outcome.outbound + [dead_letter_message(spec, r) for r in outcome.rejected]
    if outbound:
        produce_and_wait(outbound, timeout=max(settings.KAFKA_PRODUCE_TIMEOUT_SECONDS, 30.0))
    return outcome


class _Strategy(ProcessingStrategyFactory[KafkaPayload]):
    def __init__(self, spec: ConsumerSpec, options: RunOptions) -> None:
        self.spec = spec
        self.options = options
        self.totals = {"batches": 0, "messages": 0, "applied": 0, "rejected": 0}

    def _decode(self, message: Message[KafkaPayload]) -> Envelope:
        value = message.value
        assert isinstance(value, BrokerValue)
        return decode_envelope(self.spec, message.payload, value)

    def _apply(self, message: Message[ValuesBatch[Envelope]]) -> ValuesBatch[Envelope]:
        envelopes = [v.payload for v in message.payload]
        started = time.monotonic()
        outcome = apply_batch(self.spec, envelopes)
        self.totals["batches"] += 1
        self.totals["messages"] += len(envelopes)
        self.totals["applied"] += outcome.applied
        self.totals["rejected"] += len(outcome.rejected)
        logger.info(
            "consumer_batch consumer=%s messages=%d applied=%d rejected=%d published=%d ms=%.1f",
            self.spec.name, len(envelopes), outcome.applied, len(outcome.rejected),
            len(outcome.outbound), (time.monotonic() - started) * 1000,
        )
        return message.payload

    def create_with_partitions(
        self, commit: Commit, partitions: Mapping[Partition, int]
    ) -> ProcessingStrategy[KafkaPayload]:
        apply: ProcessingStrategy[Any] = RunTask(self._apply, CommitOffsets(commit))
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
    """Run until SIGTERM/SIGINT; the batch in flight is applied and committed first."""
    processor, factory = build_processor(spec, options)

    def _stop(signum: int, _frame: Any) -> None:
        logger.info("consumer_stopping consumer=%s signal=%s", spec.name, signal.Signals(signum).name)
        processor.signal_shutdown()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    logger.info(
        "consumer_started consumer=%s group=%s topics=%s batch_size=%d batch_time_ms=%d",
        spec.name, spec.group_id(), ",".join(topic_name(t) for t in spec.topics),
        options.batch_size, options.batch_time_ms,
    )
    processor.run()
    return factory.totals
