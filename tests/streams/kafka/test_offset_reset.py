"""Resetting a group's offsets (streams/kafka/offset_reset.py) on the real broker and database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from streams.kafka.client import client_config
from streams.kafka.models import ConsumerOffset
from streams.kafka.offset_reset import (
    AFTER_OFFSET, EARLIEST, LATEST, TIMESTAMP, InvalidReset, ResetRefused, ResetRequest, apply_reset,
    parse_timestamp, plan_reset,
)
from streams.kafka.registry import get_consumer
from streams.models import MachineMetric
from tests.conftest import committed, wait_until

BASE_MS = 1_700_000_000_000  # message i of a partition is stamped BASE_MS + i seconds
BASE_TIME = 1624378100


def produce(topic: str, partition: int, count: int, start: int = 0) -> None:
    producer = Producer(client_config())
    for i in range(start, start + count):
        value = f'{{"id": {i % 20}, "val": {i * 0.5}, "time": {BASE_TIME + i}}}'.encode()
        producer.produce(topic, value, partition=partition, timestamp=BASE_MS + i * 1000)
    assert producer.flush(30) == 0


def commit(group: str, positions: dict[tuple[str, int], int]) -> None:
    tps = [TopicPartition(t, p, o) for (t, p), o in positions.items()]
    admin = AdminClient(client_config())  # kept alive until the answer is in
    result = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, tps)],
                                                request_timeout=10)[group].result(timeout=30)
    assert all(tp.error is None for tp in result.topic_partitions)


def kafka_positions(group: str, topic: str, partitions: int) -> list[int]:
    admin = AdminClient(client_config())
    listed = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(partitions)])],
        request_timeout=10)[group].result(timeout=30)
    return [tp.offset for tp in sorted(listed.topic_partitions, key=lambda tp: tp.partition)]


def rows(t: str) -> dict[int, int]:
    return dict(ConsumerOffset.objects.filter(topic=t).values_list("partition", "next_offset"))


@pytest.fixture
def telemetry(kafka, transactional_db):
    """The telemetry consumer (offsets_in_db) with 10 messages on metrics[0], 6 on metrics[1],
    and its group committed at 4 and 6."""
    spec = get_consumer("telemetry")
    metrics = kafka.name("metrics")
    produce(metrics, 0, 10)
    produce(metrics, 1, 6)
    commit(spec.group_id(), {(metrics, 0): 4, (metrics, 1): 6})
    return spec


@pytest.mark.kafka_partitions(2)
def test_the_dry_run_of_each_target(kafka, telemetry):
    metrics, workorders = kafka.name("metrics"), kafka.name("workorders")

    plan = plan_reset(telemetry, ResetRequest(EARLIEST))
    assert plan.state in ("empty", "dead") and not plan.active and plan.refusal() is None
    by = {(m.topic, m.partition): m for m in plan.moves}
    assert set(by) == {(metrics, 0), (metrics, 1), (workorders, 0), (workorders, 1)}
    assert (by[(metrics, 0)].committed, by[(metrics, 0)].low, by[(metrics, 0)].high) == (4, 0, 10)
    assert by[(workorders, 0)].committed is None and by[(workorders, 0)].new == 0
    assert [(by[(metrics, p)].new, by[(metrics, p)].replayed, by[(metrics, p)].skipped) for p in (0, 1)] == \
        [(0, 4, 0), (0, 6, 0)]
    assert (plan.replayed, plan.skipped) == (10, 0)

    plan = plan_reset(telemetry, ResetRequest(LATEST, topic=metrics))
    assert [(m.partition, m.new, m.skipped) for m in plan.moves] == [(0, 10, 6), (1, 6, 0)]

    # metrics[0] has a message at +7 s; metrics[1]'s newest is at +5 s: past its end, so its end.
    at = datetime.fromtimestamp((BASE_MS + 7000) / 1000, tz=UTC)
    plan = plan_reset(telemetry, ResetRequest(TIMESTAMP, topic=metrics, timestamp=at))
    assert [(m.partition, m.new, m.skipped, m.replayed) for m in plan.moves] == [(0, 7, 3, 0), (1, 6, 0, 0)]

    plan = plan_reset(telemetry, ResetRequest(AFTER_OFFSET, topic=metrics, partition=0, offset=4))
    assert [(m.topic, m.partition, m.new, m.skipped) for m in plan.moves] == [(metrics, 0, 5, 1)]

    # One partition only, the earliest: the other is left alone.
    plan = plan_reset(telemetry, ResetRequest(EARLIEST, topic=metrics, partition=1))
    assert [(m.partition, m.new) for m in plan.moves] == [(1, 0)]
    # The dry run moved nothing.
    assert kafka_positions(telemetry.group_id(), metrics, 2) == [4, 6]


@pytest.mark.kafka_partitions(2)
def test_bad_requests_are_refused_with_the_reason(kafka, telemetry):
    metrics = kafka.name("metrics")
    cases = [
        (ResetRequest(AFTER_OFFSET, topic=metrics, partition=0, offset=10), "offset 10 is not a message of"),
        (ResetRequest(AFTER_OFFSET, topic=metrics, partition=0), "needs the partition and the offset"),
        (ResetRequest(AFTER_OFFSET, topic=metrics, offset=3), "needs the partition and the offset"),
        (ResetRequest(EARLIEST, topic=metrics, partition=2), "has no partition 2: it has 2 (0 to 1)"),
        (ResetRequest(EARLIEST, partition=0), "name the topic of the partition"),
        (ResetRequest(EARLIEST, topic="someone-elses-topic"), "does not read 'someone-elses-topic'"),
        (ResetRequest("yesterday"), "unknown target"),
        (ResetRequest(TIMESTAMP, topic=metrics), "needs the timestamp"),
        (ResetRequest(TIMESTAMP, timestamp=datetime(2026, 1, 1)), "needs a time zone"),
        (ResetRequest(LATEST, offset=3), "only for the target 'after_offset'"),
    ]
    for request, message in cases:
        with pytest.raises(InvalidReset, match=message.replace("(", r"\(").replace(")", r"\)")):
            plan_reset(telemetry, request)
        with pytest.raises(InvalidReset):
            apply_reset(telemetry, request)
    for text in ("yesterday", "2026-13-01T00:00:00", "", "-5"):
        with pytest.raises(InvalidReset):
            parse_timestamp(text)
    assert parse_timestamp("2026-12-02T05:30:00") == datetime(2026, 12, 2, 5, 30, tzinfo=UTC)
    assert parse_timestamp(str(BASE_MS)) == datetime.fromtimestamp(BASE_MS / 1000, tz=UTC)
    assert kafka_positions(telemetry.group_id(), metrics, 2) == [4, 6]


@pytest.mark.kafka_partitions(2)
def test_apply_moves_kafka_and_the_positions_in_postgresql(kafka, telemetry):
    metrics, group = kafka.name("metrics"), telemetry.group_id()
    # As the runtime stores them: the next offset to read, here ahead of Kafka on [0].
    ConsumerOffset.objects.create(group=group, topic=metrics, partition=0, next_offset=8)

    plan = plan_reset(telemetry, ResetRequest(EARLIEST, topic=metrics))
    assert [(m.partition, m.committed, m.stored, m.current, m.replayed) for m in plan.moves] == \
        [(0, 4, 8, 8, 8), (1, 6, None, 6, 6)]
    applied = apply_reset(telemetry, ResetRequest(EARLIEST, topic=metrics), expected=plan.positions())
    assert applied.replayed == 14
    assert kafka_positions(group, metrics, 2) == [0, 0]
    assert rows(metrics) == {0: 0, 1: 0}  # backwards too, where offsets.record() never moves

    applied = apply_reset(telemetry, ResetRequest(AFTER_OFFSET, topic=metrics, partition=0, offset=6))
    assert [(m.partition, m.new, m.skipped) for m in applied.moves] == [(0, 7, 7)]
    assert kafka_positions(group, metrics, 2) == [7, 0] and rows(metrics) == {0: 7, 1: 0}

    at = datetime.fromtimestamp((BASE_MS + 3000) / 1000, tz=UTC)
    apply_reset(telemetry, ResetRequest(TIMESTAMP, topic=metrics, timestamp=at))
    assert kafka_positions(group, metrics, 2) == [3, 3] and rows(metrics) == {0: 3, 1: 3}

    apply_reset(telemetry, ResetRequest(LATEST))
    assert kafka_positions(group, metrics, 2) == [10, 6] and rows(metrics) == {0: 10, 1: 6}
    assert rows(kafka.name("workorders")) == {0: 0, 1: 0}


@pytest.mark.kafka_partitions(2)
def test_apply_is_refused_when_the_group_moved_since_the_dry_run(kafka, telemetry):
    metrics, group = kafka.name("metrics"), telemetry.group_id()
    plan = plan_reset(telemetry, ResetRequest(EARLIEST, topic=metrics))
    commit(group, {(metrics, 0): 9})  # a consumer ran in between
    with pytest.raises(ResetRefused, match="changed since the dry run"):
        apply_reset(telemetry, ResetRequest(EARLIEST, topic=metrics), expected=plan.positions())
    assert kafka_positions(group, metrics, 2) == [9, 6]


def test_a_live_consumer_refuses_the_reset_and_the_reset_is_followed_on_restart(kafka, processes):
    """The offsets_in_db consumer resumes from the new position, backwards (replay) and
    forwards (skip), although PostgreSQL held a position ahead of it."""
    spec = get_consumer("telemetry")
    metrics, group = kafka.name("metrics"), spec.group_id()
    produce(metrics, 0, 10)
    consumer = processes.consumer("telemetry", "--batch-time", "50")
    wait_until(lambda: committed(kafka, group, ["metrics"]) == (10, 10), message="the first 10 applied")
    assert rows(metrics) == {0: 10}
    wait_until(lambda: plan_reset(spec, ResetRequest(EARLIEST)).members == 1, message="the member in its group")

    plan = plan_reset(spec, ResetRequest(EARLIEST))
    assert plan.active and plan.refusal().startswith("stop the consumer first: 1 member in the group")
    with pytest.raises(ResetRefused, match="stop the consumer first: 1 member"):
        apply_reset(spec, ResetRequest(EARLIEST))
    assert rows(metrics) == {0: 10} and kafka_positions(group, metrics, 1) == [10]

    assert processes.stop(consumer) == 0
    wait_until(lambda: not plan_reset(spec, ResetRequest(EARLIEST)).active, message="the group empty")
    MachineMetric.objects.all().delete()
    apply_reset(spec, ResetRequest(EARLIEST))
    assert rows(metrics) == {0: 0}
    consumer = processes.consumer("telemetry", "--batch-time", "50")
    wait_until(lambda: MachineMetric.objects.count() == 10, message="the 10 read again")
    wait_until(lambda: rows(metrics) == {0: 10}, message="the position back at the end")
    assert processes.stop(consumer) == 0

    # Skip: 10 more, step over 10..14 (past offset 14); only 15..19 are applied.
    produce(metrics, 0, 10, start=10)
    wait_until(lambda: not plan_reset(spec, ResetRequest(EARLIEST)).active, message="the group empty")
    apply_reset(spec, ResetRequest(AFTER_OFFSET, topic=metrics, partition=0, offset=14))
    assert rows(metrics) == {0: 15} and kafka_positions(group, metrics, 1) == [15]
    consumer = processes.consumer("telemetry", "--batch-time", "50")
    wait_until(lambda: committed(kafka, group, ["metrics"]) == (20, 20), message="the rest applied")
    times = sorted(MachineMetric.objects.values_list("time", flat=True))
    assert times == [BASE_TIME + i for i in range(10)] + [BASE_TIME + i for i in range(15, 20)]
    assert processes.stop(consumer) == 0


def test_a_consumer_reading_its_positions_during_a_reset_waits_and_reads_the_new_ones(kafka, transactional_db):
    """The window between Kafka taking the new offsets and PostgreSQL committing the rows: a
    consumer assigned then reads the rows FOR SHARE (offsets.positions), so it waits for the
    reset's transaction and never resumes from the position being replaced."""
    import threading
    import time

    from django.db import connection, transaction

    from streams.kafka import offsets

    group, topic = "reset-window", kafka.name("metrics")
    ConsumerOffset.objects.create(group=group, topic=topic, partition=0, next_offset=10)
    locked, read = threading.Event(), {}

    def reset() -> None:
        try:
            with transaction.atomic():
                list(ConsumerOffset.objects.select_for_update().filter(group=group))
                locked.set()
                time.sleep(1.0)  # Kafka being told, in apply_reset
                ConsumerOffset.objects.filter(group=group).update(next_offset=0)
        finally:
            connection.close()

    def assigned() -> None:
        try:
            locked.wait(10)
            started = time.monotonic()
            read["positions"] = offsets.positions(group, [(topic, 0)])
            read["waited"] = time.monotonic() - started
        finally:
            connection.close()

    threads = [threading.Thread(target=reset), threading.Thread(target=assigned)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert read["positions"] == {(topic, 0): 0}
    assert read["waited"] >= 0.5


def test_kafka_itself_refuses_the_commit_while_a_member_is_in_the_group(kafka, transactional_db):
    """The race the state check cannot close: a member joins after it. Kafka answers
    UNKNOWN_MEMBER_ID per partition, and the move is refused, not half done."""
    from confluent_kafka import Consumer

    from streams.kafka import offset_reset

    spec = get_consumer("telemetry")
    metrics = kafka.name("metrics")
    produce(metrics, 0, 3)
    member = Consumer(client_config(**{"group.id": spec.group_id(), "enable.auto.commit": False}))
    try:
        member.subscribe([metrics])
        wait_until(lambda: member.poll(0.2) is not None or bool(member.assignment()), message="an assignment")
        plan = plan_reset(spec, ResetRequest(LATEST, topic=metrics))
        with pytest.raises(ResetRefused, match="a consumer joined the group meanwhile"):
            offset_reset._commit_to_kafka(AdminClient(client_config()), spec.group_id(), plan.moves)
    finally:
        member.close()


def test_where_a_consumer_resumes():
    from streams.kafka.offset_reset import PartitionMove

    def move(committed, stored=None, low=5, high=20, new=10):
        return PartitionMove(topic="t", partition=0, committed=committed, stored=stored, low=low, high=high, new=new)

    assert move(None).resumes_at is None and move(None).current == 5 and move(None).skipped == 5
    assert move(12, stored=15).current == 15 and move(12, stored=15).replayed == 5
    assert move(2).current == 5  # deleted by retention: the earliest kept
    assert move(30).current == 5  # past the end (a topic made anew): auto.offset.reset, earliest
    assert move(20, new=20).skipped == move(20, new=20).replayed == 0
