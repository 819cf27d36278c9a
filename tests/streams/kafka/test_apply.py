"""One batch applied (streams/kafka/apply.py): a message the database refuses is found by
bisecting the batch in savepoints and dead-lettered, the rest of the batch is applied,
and a run of refusals past the limit rolls the whole batch back instead.

Called in-process, so that each step can be seen: decoding and the dead-letter message
are pure; bisection runs against the real PostgreSQL (a value out of bigint's range is
refused by the database itself); a whole batch publishes its dead letters to the real
Kafka and records them through the quarantine sink.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
from django.db import OperationalError

from quarantine.models import QuarantineRecord
from streams.kafka.apply import apply_batch, apply_isolating, dead_letter_message, decode_message
from streams.kafka.faults import DlqLimit, SystemicFailure
from streams.kafka.models import ConsumerOffset
from streams.kafka.registry import BatchOutcome, ConsumerSpec, Envelope, MessageRejected, Rejection

GROUP = "apply-test"
POISON = 2**70  # over bigint: PostgreSQL refuses the row


class Recorder:
    """A batch handler that stores one row per message (its offset as the row's partition,
    its value as next_offset), and counts its calls."""

    def __init__(self, fail_with: Exception | None = None) -> None:
        self.calls = 0
        self.fail_with = fail_with

    def __call__(self, envelopes: Sequence[Envelope]) -> BatchOutcome:
        self.calls += 1
        if self.fail_with is not None:
            raise self.fail_with
        for e in envelopes:
            ConsumerOffset.objects.create(group=GROUP, topic=e.topic, partition=e.offset, next_offset=e.value)
        return BatchOutcome(applied=len(envelopes))


def decode_int(envelope: Envelope) -> int:
    try:
        return int(envelope.raw)
    except ValueError:
        raise MessageRejected(f"not a number: {envelope.raw[:20]!r}") from None


def spec_with(handler: Recorder) -> ConsumerSpec:
    return ConsumerSpec(name="apply-test", topics=("metrics",), decode=decode_int, handle_batch=handler)


def envelopes(values: list[int], topic: str = "t") -> list[Envelope]:
    return [Envelope(topic, 0, offset, None, [], str(v).encode(), value=v) for offset, v in enumerate(values)]


def stored() -> list[int]:
    return sorted(ConsumerOffset.objects.filter(group=GROUP).values_list("partition", flat=True))


class FakeMessage:
    """A consumed message as confluent-kafka hands it over."""

    def __init__(self, value: bytes) -> None:
        self._value = value

    def timestamp(self) -> tuple[int, int]:
        return 1, 1_700_000_000_000

    def topic(self) -> str:
        return "metrics"

    def partition(self) -> int:
        return 3

    def offset(self) -> int:
        return 17

    def key(self) -> bytes:
        return b"k"

    def headers(self) -> None:
        return None

    def value(self) -> bytes:
        return self._value


def test_decoding_a_message_keeps_its_origin_and_a_rejection_instead_of_raising():
    spec = spec_with(Recorder())
    good = decode_message(spec, FakeMessage(b"42"))
    assert (good.topic, good.partition, good.offset, good.value, good.rejection) == ("metrics", 3, 17, 42, None)
    assert good.timestamp.year == 2023
    bad = decode_message(spec, FakeMessage(b"forty-two"))
    assert bad.rejection.reason == "not a number: b'forty-two'"


def test_a_decoder_that_crashes_rejects_the_message_with_the_error():
    def crash(envelope: Envelope) -> int:
        raise ZeroDivisionError("division by zero")

    spec = ConsumerSpec(name="apply-test", topics=("metrics",), decode=crash, handle_batch=Recorder())
    assert decode_message(spec, FakeMessage(b"1")).rejection.reason == \
        "decoder error: ZeroDivisionError: division by zero"


def test_the_dead_letter_message_is_the_original_bytes_with_its_origin_and_reason(settings):
    settings.KAFKA_TOPICS = {**settings.KAFKA_TOPICS, "dead_letters": {"name": "t-dead", "partitions": 1}}
    envelope = Envelope("metrics", 2, 41, b"sensor-1", [("trace", b"abc")], b'{"val": "x"}')
    message = dead_letter_message(spec_with(Recorder()), Rejection(envelope=envelope, reason="invalid fields: val"))
    assert (message.topic, message.value, message.key) == ("t-dead", b'{"val": "x"}', b"sensor-1")
    assert dict(message.headers) == {
        "trace": b"abc", "x-dlq-reason": b"invalid fields: val", "x-dlq-consumer": b"apply-test",
        "x-dlq-original-topic": b"metrics", "x-dlq-original-partition": b"2", "x-dlq-original-offset": b"41"}


@pytest.mark.django_db
def test_bisection_applies_the_batch_around_a_message_the_database_refuses():
    values = list(range(16))
    values[11] = POISON
    handler = Recorder()
    outcome, refused = apply_isolating(spec_with(handler), envelopes(values))
    assert stored() == [i for i in range(16) if i != 11]
    assert outcome.applied == 15
    assert [r.envelope.offset for r in refused] == [11]
    assert refused[0].reason.startswith("refused by the database: DataError")
    assert refused[0].errors[0]["rule"] == "database"
    # One poison message costs about 2*log2(batch) extra handler calls.
    assert handler.calls <= 1 + 2 * math.log2(16)


@pytest.mark.django_db
def test_bisection_finds_every_message_that_fails_on_its_own():
    values = [POISON if i in (0, 5, 6, 12) else i for i in range(13)]
    outcome, refused = apply_isolating(spec_with(Recorder()), envelopes(values))
    assert sorted(r.envelope.offset for r in refused) == [0, 5, 6, 12]
    assert stored() == [i for i in range(13) if i not in (0, 5, 6, 12)] and outcome.applied == 9


@pytest.mark.django_db
def test_a_clean_batch_costs_one_handler_call():
    handler = Recorder()
    outcome, refused = apply_isolating(spec_with(handler), envelopes(list(range(8))))
    assert (handler.calls, outcome.applied, refused, stored()) == (1, 8, [], list(range(8)))


@pytest.mark.django_db
def test_a_transient_error_is_raised_at_once_never_bisected():
    handler = Recorder(fail_with=OperationalError("server closed the connection unexpectedly"))
    with pytest.raises(OperationalError):
        apply_isolating(spec_with(handler), envelopes(list(range(8))))
    assert handler.calls == 1


@pytest.mark.django_db(transaction=True)
def test_a_batch_dead_letters_the_refused_message_and_applies_the_rest(kafka):
    batch = envelopes([1, 2, POISON, 4], topic=kafka.name("metrics"))
    batch.append(Envelope(kafka.name("metrics"), 0, 4, b"k", [], b"nope", rejection=MessageRejected("not a number")))
    applied = apply_batch(spec_with(Recorder()), batch, limit=DlqLimit(max_consecutive=3))
    assert applied.refused == 1 and stored() == [0, 1, 3]
    records = QuarantineRecord.objects.filter(consumer="apply-test").order_by("offset")
    assert [(r.offset, r.reason.split(":")[0]) for r in records] == [(2, "refused by the database"),
                                                                    (4, "not a number")]
    dead = kafka.read("dead_letters", expected=2)
    assert sorted(dict(m.headers())["x-dlq-original-offset"] for m in dead) == [b"2", b"4"]
    assert {m.value() for m in dead} == {str(POISON).encode(), b"nope"}


@pytest.mark.django_db(transaction=True)
def test_a_run_of_refusals_past_the_limit_rolls_the_batch_back_and_dead_letters_nothing(kafka):
    limit = DlqLimit(max_consecutive=3)
    batch = envelopes([POISON] * 4, topic=kafka.name("metrics"))
    with pytest.raises(SystemicFailure, match="4 messages in a row were refused by the database"):
        apply_batch(spec_with(Recorder()), batch, limit=limit)
    assert stored() == [] and not QuarantineRecord.objects.exists()
    assert kafka.end_offsets("dead_letters") == 0
    assert limit.consecutive == 0  # the batch will be tried again: it is not counted
