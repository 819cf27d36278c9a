"""The words an operator is shown for a failure (streams/kafka/client.py): `describe` for
any error, `failure_reason` for a call to the cluster. Pure logic: no service."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException

from streams.kafka.client import describe, failure_code, failure_reason


def test_describe_is_the_type_and_the_message_on_one_line():
    assert describe(ValueError("bad\n  value\tin row 3")) == "ValueError: bad value in row 3"


def test_describe_escapes_nul_and_names_an_error_without_a_message():
    assert describe(ValueError("a\x00b")) == "ValueError: a\\x00b"
    assert describe(TimeoutError()) == "TimeoutError: TimeoutError()"


def test_describe_cuts_to_its_limit_and_none_keeps_it_whole():
    long = ValueError("x" * 1000)
    assert len(describe(long)) == 400
    assert len(describe(long, limit=300)) == 300
    assert describe(long, limit=None) == "ValueError: " + "x" * 1000


def test_failure_reason_is_the_brokers_own_words_else_the_error_described():
    refused = KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION, "Broker: Not leader for partition"))
    assert failure_reason(refused) == "Broker: Not leader for partition"
    assert failure_code(refused) == KafkaError.NOT_LEADER_FOR_PARTITION
    assert failure_reason(ConnectionError("refused\non port 1")) == "ConnectionError: refused on port 1"
    assert failure_reason(TimeoutError()) == "no answer in time"
    assert failure_code(TimeoutError()) is None
