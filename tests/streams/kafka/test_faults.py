"""The fault rules of the runtime (streams/kafka/faults.py): which errors are transient,
the backoff, and the dead-letter limit that tells a systemic fault from bad data.
Pure logic: no service."""

from __future__ import annotations

import psycopg2
import pytest
from confluent_kafka import KafkaError, KafkaException
from django.db import DataError, IntegrityError, InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerError

from streams.kafka.faults import Backoff, DlqLimit, SystemicFailure, is_transient
from streams.kafka.producer import DeliveryError


@pytest.mark.parametrize("exc", [
    OperationalError("server closed the connection unexpectedly"), InterfaceError("connection already closed"),
    psycopg2.OperationalError("could not connect"), DeliveryError("not acknowledged within 30s"),
    KafkaException(KafkaError(KafkaError._TRANSPORT)), BrokerError("redis away"), ConnectionResetError(),
    TimeoutError(),
])
def test_an_absent_database_or_broker_is_transient(exc):
    assert is_transient(exc)


@pytest.mark.parametrize("exc", [
    DataError("value too long for type character varying(64)"), IntegrityError("duplicate key"),
    ValueError("bad payload"), KeyError("id"), TypeError("unsupported operand"),
])
def test_a_fault_of_the_data_or_the_handler_is_not_transient(exc):
    assert not is_transient(exc)


def test_the_backoff_doubles_up_to_its_cap_and_starts_again_after_a_reset():
    backoff = Backoff(base=0.5, cap=3.0)
    assert [backoff.fail() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert 0 < backoff.remaining() <= 3.0
    backoff.reset()
    assert backoff.remaining() == 0.0 and backoff.fail() == 0.5


def test_refusals_mixed_with_accepted_messages_are_bad_data_not_a_systemic_fault():
    limit = DlqLimit(max_consecutive=3)
    for _ in range(10):  # ten batches, each with 2 refused and some accepted: never a run over 3
        limit.check(refused=2, accepted=5)
        limit.record(refused=2, accepted=5)
    assert limit.refused_total == 20 and limit.consecutive == 2


def test_a_run_of_refusals_across_batches_past_the_limit_is_a_systemic_fault():
    limit = DlqLimit(max_consecutive=5)
    limit.check(refused=3, accepted=0)
    limit.record(refused=3, accepted=0)
    with pytest.raises(SystemicFailure, match=r"6 messages in a row were refused by the database \(limit 5\)"):
        limit.check(refused=3, accepted=0)
    # The batch that raised is not recorded (it was rolled back): the run is still 3.
    assert limit.consecutive == 3 and limit.refused_total == 3


def test_an_accepted_message_ends_the_run_of_refusals():
    limit = DlqLimit(max_consecutive=5)
    limit.record(refused=5, accepted=0)
    limit.check(refused=4, accepted=1)  # this batch's refusals start a new run, of 4
    limit.record(refused=4, accepted=1)
    assert limit.consecutive == 4
    limit.check(refused=1, accepted=0)
    with pytest.raises(SystemicFailure):
        limit.check(refused=2, accepted=0)


def test_one_batch_refused_whole_past_the_limit_is_a_systemic_fault():
    with pytest.raises(SystemicFailure):
        DlqLimit(max_consecutive=10).check(refused=11, accepted=0)
    DlqLimit(max_consecutive=10).check(refused=0, accepted=0)  # an empty batch refuses nothing
