"""One batch, applied: the steps between consuming and committing, for every consumer.

    decode (per message, pure) -> apply (one DB transaction: the handler, the
    dead-letter records, the consumer's offsets when it keeps them in
    PostgreSQL) -> publish outbound + dead letters, wait for acks -> the
    outcome's `after_publish` steps (each its own transaction)

Faults (the rules are in faults.py): a message the database refuses is found
by bisecting the batch in savepoints and dead-lettered with the error, and the
rest of the batch is applied (`apply_isolating`). A transient or systemic
fault propagates with nothing committed; the loop (runtime.py) holds the batch
and tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import psycopg2
from django.db import close_old_connections, transaction

from . import offsets, tracing
from .client import describe
from .faults import DlqLimit, SystemicFailure, is_transient
from .headers import dead_letter_headers
from .heartbeat import rival_group
from .producer import Outbound, batch_ack_timeout, produce_and_wait
from .registry import (
    BatchOutcome,
    ConsumerSpec,
    Envelope,
    MessageRejected,
    PartitionProgress,
    Rejection,
    record_dead_letters,
)
from .topics import topic_name

logger = logging.getLogger(__name__)


def decode_message(spec: ConsumerSpec, message: Any) -> Envelope:
    """A confluent-kafka message as an Envelope, decoded by the consumer's `decode` step.

    A message the decoder rejects, or crashes on, carries the rejection: it goes to
    the dead-letter path and never blocks the partition."""
    kind, millis = message.timestamp()
    envelope = Envelope(message.topic(), message.partition(), message.offset(), message.key(),
                        message.headers() or [], message.value() or b"",
                        millis=millis if kind and millis >= 0 else None)
    try:
        envelope.value = spec.decode(envelope)
    except MessageRejected as exc:
        # Without its traceback: the frames in it hold the envelope, and that cycle
        # would wait for the garbage collector, which a batch runtime runs rarely.
        envelope.rejection = exc.with_traceback(None)
    except Exception as exc:  # a decoder bug must not block the partition either
        logger.exception("consumer_decode_crashed consumer=%s", spec.name)
        envelope.rejection = MessageRejected(f"decoder error: {describe(exc, limit=None)}")
    return envelope


def dead_letter_message(spec: ConsumerSpec, rejection: Rejection) -> Outbound:
    """The dead-letter record: the original bytes, with origin and reason in headers."""
    env = rejection.envelope
    headers = dead_letter_headers(env.headers, reason=rejection.reason, consumer=spec.name, topic=env.topic,
                                  partition=env.partition, offset=env.offset)
    if tracing.message_traceparent(env.headers) is None:
        headers += tracing.ambient_headers() or []  # it came without a context: the batch's
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
                        applied=first.applied + second.applied,
                        after_publish=first.after_publish + second.after_publish)


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


def _check_group(spec: ConsumerSpec) -> None:
    """SystemicFailure (the batch held, the consumer paused with the reason) while a
    consumer that allows one group per database has a rival group live there."""
    if spec.one_group_per_database:
        reason = rival_group(consumer=spec.name, group=spec.group_id())
        if reason:
            raise SystemicFailure(reason)


def _batch_attributes(spec: ConsumerSpec) -> dict[str, Any]:
    return {"messaging.system": "kafka", "messaging.operation.type": "process", "messaging.operation.name": "process",
            "messaging.consumer.group.name": spec.group_id(), "console.consumer": spec.name}


def apply_batch(spec: ConsumerSpec, envelopes: Sequence[Envelope], *, limit: DlqLimit | None = None) -> AppliedBatch:
    """Apply one batch: the handler and the dead-letter records in one transaction,
    then publish and wait for the broker.

    Messages that fail on their own are found by bisection and dead-lettered with
    the error; the rest of the batch is applied. Transient errors (database or broker
    away) and a systemic failure (`limit`) propagate, with nothing committed, for the
    caller to retry the whole batch after a backoff.

    The batch is one span (tracing.batch_span), the ambient context of its handler
    and of what it publishes."""
    with tracing.batch_span(f"process {spec.name}", envelopes, attributes=partial(_batch_attributes, spec)):
        return _apply_batch(spec, envelopes, limit)


def _apply_batch(spec: ConsumerSpec, envelopes: Sequence[Envelope], limit: DlqLimit | None) -> AppliedBatch:
    valid = [e for e in envelopes if e.rejection is None]
    decode_rejections = [
        Rejection(envelope=e, reason=e.rejection.reason, errors=e.rejection.errors)
        for e in envelopes
        if e.rejection is not None
    ]
    close_old_connections()
    _check_group(spec)
    with transaction.atomic():
        if spec.offsets_in_db:
            offsets.record(spec.group_id(), envelopes)  # in the batch's transaction: applied once
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
        produce_and_wait(outbound, timeout=batch_ack_timeout())
    _after_publish(spec, outcome)
    return AppliedBatch(outcome=outcome, refused=len(refused))


def _after_publish(spec: ConsumerSpec, outcome: BatchOutcome) -> None:
    """The outcome's steps that follow the broker's acks, each in a transaction of its own."""
    for step in outcome.after_publish:
        try:
            with transaction.atomic():
                step()
        except Exception as exc:  # it may only lag: the batch is applied and published
            logger.warning("consumer_after_publish_failed consumer=%s error=%s", spec.name, describe(exc))


def apply_tick(spec: ConsumerSpec, progress: PartitionProgress) -> int:
    """Run the consumer's `tick` (work due by the clock, such as closing quiet windows) in
    one transaction, with the member's partition progress, then publish what it returned
    and run its `after_publish` steps, as for a batch. Returns the messages published."""
    if spec.tick is None:
        return 0
    close_old_connections()
    _check_group(spec)
    with transaction.atomic():
        outcome = spec.tick(progress)
    if outcome.outbound:  # a span only for a tick that publishes: the context of its messages
        with tracing.span(f"tick {spec.name}", kind=tracing.SpanKind.PRODUCER, root=True,
                          attributes=_batch_attributes(spec)):
            produce_and_wait(outcome.outbound, timeout=batch_ack_timeout())
    _after_publish(spec, outcome)
    return len(outcome.outbound)
