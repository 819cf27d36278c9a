"""The cluster views' partition reads when the broker refuses or does not answer (pure
logic, with a stand-in for the consumer: the real broker's refusals are in
tests/console/test_ops.py and tests/chaos/test_kafka_outage.py)."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streams.kafka.cluster import Watermarks


class Refusing:
    """A consumer whose watermark calls fail with `code`, counting them."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.calls = 0

    def get_watermark_offsets(self, tp, timeout, cached):
        self.calls += 1
        raise KafkaException(KafkaError(self.code))


def test_a_partition_without_a_leader_is_asked_about_alone():
    consumer = Refusing(KafkaError.NOT_LEADER_FOR_PARTITION)
    marks = Watermarks(consumer)
    reasons = [marks(TopicPartition("t", p)) for p in range(3)]
    assert consumer.calls == 3  # the next partition may well have its leader
    assert all(isinstance(r, str) and r for r in reasons)


def test_a_cluster_that_does_not_answer_is_waited_for_once():
    consumer = Refusing(KafkaError._TIMED_OUT)
    marks = Watermarks(consumer)
    reasons = [marks(TopicPartition("t", p)) for p in range(50)]
    assert consumer.calls == 1  # not 50 timeouts in a row
    assert len(set(reasons)) == 1 and reasons[0]
