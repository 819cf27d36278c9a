"""The consumer runtime on the real broker and database."""

from __future__ import annotations

import json
import signal

import pytest
from django.core.management import call_command

from quarantine.models import QuarantineRecord
from streams.kafka.producer import Outbound, produce_and_wait
from streams.models import MachineMetric, WorkOrderReading
from tests.conftest import committed, wait_until

BASE_TIME = 1624378100


def metric_events(kafka, count: int, start: int = 0) -> list[Outbound]:
    return [
        Outbound(kafka.name("metrics"), {"id": i % 20, "val": i * 0.5, "time": BASE_TIME + i}, key=str(i % 20))
        for i in range(start, start + count)
    ]


def test_produce_consume_rows_in_postgres(kafka, processes):
    produce_and_wait(metric_events(kafka, 500))
    produce_and_wait([
        Outbound(kafka.name("workorders"), {"time": 1625748534, "product": 1, "production": 5470.28}),
    ])
    consumer = processes.consumer("telemetry")
    wait_until(lambda: MachineMetric.objects.count() == 500 and WorkOrderReading.objects.count() == 1,
               message="500 metrics and 1 work order in PostgreSQL")
    metric = MachineMetric.objects.get(parameter_id=7, time=BASE_TIME + 7)
    assert metric.value == 3.5
    assert WorkOrderReading.objects.get().production == 5470.28
    assert processes.stop(consumer) == 0
    assert "stopped cleanly" in processes.log(consumer)


def test_a_batch_applied_in_postgresql_but_not_committed_to_kafka_is_not_applied_again(kafka, processes):
    """The crash between the database commit and the Kafka commit: the positions the batch's
    transaction stored (streams_consumeroffset) win over Kafka's older committed offset, so
    the replay applies nothing of it, and the Kafka offsets still reach the end."""
    from streams.kafka.models import ConsumerOffset

    produce_and_wait(metric_events(kafka, 10))
    group = f"{kafka.group_prefix}-telemetry"
    # As if a process applied offsets 0-5 (their transaction committed, positions included)
    # and died before committing to Kafka. Their rows are left out on purpose: a replay of
    # them would write them, so their absence shows the replay skipped them.
    ConsumerOffset.objects.create(group=group, topic=kafka.name("metrics"), partition=0, next_offset=6)
    consumer = processes.consumer("telemetry")
    wait_until(lambda: committed(kafka, group, ["metrics"]) == (10, 10), message="offsets committed to the end")
    assert sorted(MachineMetric.objects.values_list("time", flat=True)) == [BASE_TIME + i for i in range(6, 10)]
    assert ConsumerOffset.objects.get(group=group, topic=kafka.name("metrics"), partition=0).next_offset == 10
    assert processes.stop(consumer) == 0


def test_a_crash_between_the_two_commits_on_a_quiet_topic_still_commits_to_the_end(kafka, processes):
    """SIGKILL after the batch's transaction committed in PostgreSQL and before the Kafka
    commit (the `before_kafka_commit` fault point), then nothing more is produced: the
    next process has nothing to apply, and still commits the stored positions, so the
    group's lag reaches 0 within a few seconds instead of staying behind for ever."""
    import time

    from streams.kafka.models import ConsumerOffset

    group = f"{kafka.group_prefix}-telemetry"
    produce_and_wait(metric_events(kafka, 40))
    # One replica (static membership): its restart takes the partitions back at once.
    crashing = processes.consumer("telemetry", "--instance-id", "1", CONSUMER_FAULT_KILL_AT="before_kafka_commit")
    assert crashing.wait(timeout=60) == -signal.SIGKILL, processes.log(crashing)
    assert MachineMetric.objects.count() == 40  # applied in PostgreSQL ...
    assert ConsumerOffset.objects.get(group=group).next_offset == 40
    assert committed(kafka, group, ["metrics"]) == (0, 40)  # ... and never committed to Kafka

    started = time.monotonic()
    replacement = processes.consumer("telemetry", "--instance-id", "1")
    wait_until(lambda: committed(kafka, group, ["metrics"]) == (40, 40), timeout=30,
               message="the stored positions committed to Kafka with no new message")
    took = time.monotonic() - started
    assert took < 20, f"the commit took {took:.1f} s"
    log = processes.log(replacement)
    assert "consumer_positions_commit " in log
    assert "consumer_batch " not in log, "the replacement applied a batch again"
    assert MachineMetric.objects.count() == 40
    assert processes.stop(replacement) == 0


@pytest.mark.kafka_partitions(3)
def test_sigkill_mid_stream_applies_every_message_exactly_once(kafka, processes):
    total = 30000
    produce_and_wait(metric_events(kafka, total), timeout=60)
    consumer = processes.consumer("telemetry", "--batch-size", "500")
    wait_until(lambda: MachineMetric.objects.count() >= 2000, message="the first batches")
    consumer.send_signal(signal.SIGKILL)
    consumer.wait(timeout=10)
    partial = MachineMetric.objects.count()
    assert partial < total, "the consumer finished before it was killed; produce more messages"
    # A second batch of events while the consumer is down.
    produce_and_wait(metric_events(kafka, 1000, start=total), timeout=60)
    processes.consumer("telemetry", "--batch-size", "500")
    wait_until(lambda: MachineMetric.objects.count() >= total + 1000, timeout=120,
               message="every metric after the restart")
    assert MachineMetric.objects.count() == total + 1000
    values = dict(MachineMetric.objects.values_list("time", "value"))
    assert all(values[BASE_TIME + i] == i * 0.5 for i in range(total + 1000))


def test_malformed_messages_are_dead_lettered_and_the_consumer_keeps_going(kafka, processes):
    metrics = kafka.name("metrics")
    produce_and_wait([
        Outbound(metrics, b"{not json"),
        Outbound(metrics, {"id": "ten", "val": "high", "time": BASE_TIME}),
        Outbound(metrics, b"[1, 2, 3]"),
        Outbound(metrics, b"\xff\xfe binary"),
        Outbound(metrics, {"id": 3, "val": 1.25, "time": BASE_TIME}),
    ])
    consumer = processes.consumer("telemetry")
    wait_until(lambda: MachineMetric.objects.filter(parameter_id=3).exists(), message="the valid metric")
    wait_until(lambda: QuarantineRecord.objects.count() == 4, message="four quarantine records")

    reasons = sorted(QuarantineRecord.objects.values_list("reason", flat=True))
    assert any(r.startswith("payload is not JSON") for r in reasons)
    assert any(r.startswith("payload is not UTF-8") for r in reasons)
    assert "payload must be a JSON object, got list" in reasons
    wrong_types = QuarantineRecord.objects.get(reason__startswith="invalid fields")
    assert {e["field"] for e in wrong_types.errors} == {"id", "val"}
    assert wrong_types.topic == metrics and wrong_types.offset is not None
    assert bytes(wrong_types.payload) == json.dumps({"id": "ten", "val": "high", "time": BASE_TIME}, separators=(",", ":")).encode()

    dead = kafka.read("dead_letters", expected=4)
    assert len(dead) == 4
    headers = dict(dead[0].headers())
    assert headers["x-dlq-original-topic"].decode() == metrics
    assert headers["x-dlq-consumer"] == b"telemetry"
    assert headers["x-dlq-reason"]
    assert consumer.poll() is None, "the consumer must keep running"


def test_replayed_dead_letters_are_recorded_once(kafka, processes):
    produce_and_wait([Outbound(kafka.name("metrics"), b"oops")])
    first = processes.consumer("telemetry", "--batch-size", "1")
    wait_until(lambda: QuarantineRecord.objects.count() == 1, message="the dead letter")
    processes.stop(first)
    # A new group re-reads the topic from the start: the same message again.
    processes.consumer("telemetry", CONSUMER_GROUP_PREFIX=kafka.group_prefix + "-replay")
    wait_until(lambda: kafka.end_offsets("dead_letters") >= 2, message="the second dead letter")
    assert QuarantineRecord.objects.count() == 1


@pytest.mark.django_db
def test_create_topics_is_idempotent(kafka, capsys):
    call_command("create_topics")
    call_command("create_topics")
    out = capsys.readouterr().out
    assert "0 topic(s) created" in out.splitlines()[-1]


def test_run_consumer_list_names_every_consumer(capsys):
    from streams.kafka.registry import consumers
    from streams.kafka.topics import topic_name

    call_command("run_consumer", "--list")
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    registered = consumers()
    assert set(lines) == set(registered) and {"telemetry", "orders", "files"} <= set(lines)
    for name, spec in registered.items():
        assert f"group={spec.group_id()}" in lines[name]
        assert f"topics={', '.join(topic_name(t) for t in spec.topics)}" in lines[name]
        assert f"dead-letters={topic_name(spec.dead_letter_topic)}" in lines[name]


@pytest.mark.kafka_partitions(3)
def test_two_processes_share_the_partitions_and_survive_a_rebalance(kafka, processes):
    total = 20000
    produce_and_wait(metric_events(kafka, total), timeout=60)
    first = processes.consumer("telemetry", "--batch-size", "200")
    wait_until(lambda: MachineMetric.objects.count() >= 1000, message="the first consumer's batches")
    # A second process joins the group mid-stream: partitions are rebalanced.
    second = processes.consumer("telemetry", "--batch-size", "200")
    # Joined (not merely launched): the first may finish the backlog before the second is up.
    wait_until(lambda: "consumer_assigned" in processes.log(second), timeout=60, message="the second member joined")
    wait_until(lambda: MachineMetric.objects.count() >= total, timeout=120, message="every metric")
    assert MachineMetric.objects.count() == total
    # Stopping one member hands its partitions back to the other.
    assert processes.stop(second) == 0
    produce_and_wait(metric_events(kafka, 500, start=total))
    wait_until(lambda: MachineMetric.objects.count() == total + 500, message="metrics after the rebalance")
    assert first.poll() is None
