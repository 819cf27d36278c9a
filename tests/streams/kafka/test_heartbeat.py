"""A consumer process's heartbeat (streams/kafka/heartbeat.py): what a Pulse writes to
PostgreSQL and when, what consumer_health reads back for /healthz and the dashboards,
and rival_group, which keeps a second group off a consumer whose state is shared.
Against the real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from streams.kafka.heartbeat import Pulse, batch_quantile, consumer_health, process_member, rival_group
from streams.kafka.models import ConsumerHeartbeat


def test_a_quantile_is_the_upper_bound_of_the_bucket_it_falls_in():
    buckets = {"0.01": 50, "0.1": 90, "1.0": 99, "inf": 100}  # cumulative
    assert batch_quantile(buckets, 0.5) == 0.01
    assert batch_quantile(buckets, 0.9) == 0.1
    assert batch_quantile(buckets, 0.99) == 1.0
    assert batch_quantile(buckets, 1.0) == float("inf")
    assert batch_quantile({"0.01": 0, "inf": 0}, 0.5) is None


def beating(consumer: str = "hb-test", **fields) -> ConsumerHeartbeat:
    now = timezone.now()
    values = {"member": f"host:{ConsumerHeartbeat.objects.count() + 1}", "group_id": "g", "started_at": now,
              "beat_at": now, "state": "running", **fields}
    return ConsumerHeartbeat.objects.create(consumer=consumer, **values)


@pytest.mark.django_db(transaction=True)
def test_a_pulse_writes_its_counts_and_its_partitions_and_a_state_change_at_once(settings):
    settings.CONSUMER_HEARTBEAT_SECONDS = 3600
    pulse = Pulse(consumer="hb-test", group_id="g-1", topics=["metrics"], instance_id="replica-0")
    pulse.set_partitions([("metrics", 1), ("metrics", 0)])
    pulse.batch_done(messages=10, applied=9, dead_lettered=1, refused=1, seconds=0.02)
    pulse.beat()
    row = ConsumerHeartbeat.objects.get(consumer="hb-test", member=process_member())
    assert (row.group_id, row.instance_id, row.partitions) == ("g-1", "replica-0", [["metrics", 0], ["metrics", 1]])
    assert (row.batches, row.messages, row.applied, row.dead_lettered, row.refused) == (1, 10, 9, 1, 1)
    assert row.batch_buckets["0.025"] == 1 and row.batch_buckets["0.01"] == 0
    first_beat = row.beat_at

    pulse.beat()  # nothing changed and the next beat is not due: no write
    assert ConsumerHeartbeat.objects.get(pk=row.pk).beat_at == first_beat
    pulse.set_state("waiting", "database unavailable: OperationalError: connection refused")
    pulse.beat()  # a new state is written at once
    row.refresh_from_db()
    assert (row.state, row.last_error) == ("waiting", "database unavailable: OperationalError: connection refused")
    assert row.beat_at > first_beat


@pytest.mark.django_db(transaction=True)
def test_a_pulse_never_writes_inside_a_batchs_transaction_and_writes_at_the_next_beat_after_it(settings):
    settings.CONSUMER_HEARTBEAT_SECONDS = 3600
    pulse = Pulse(consumer="hb-test", group_id="g", topics=["metrics"])
    with transaction.atomic():
        pulse.beat(force=True)
    assert not ConsumerHeartbeat.objects.exists()
    pulse.beat(force=True)
    assert ConsumerHeartbeat.objects.count() == 1

    with transaction.atomic():  # a state change made inside a transaction stays due
        pulse.set_state("waiting", "database unavailable")
        pulse.beat()
    pulse.beat()  # not forced, and the scheduled beat is an hour away
    assert ConsumerHeartbeat.objects.get().state == "waiting"


@pytest.mark.django_db
def test_consumer_health_says_how_each_consumer_is_doing(settings):
    settings.CONSUMER_HEARTBEAT_STALE_SECONDS = 30
    now = timezone.now()
    beating("running")
    beating("running", state="stopped", beat_at=now - timedelta(minutes=5))  # an old process, gone
    beating("waiting", state="waiting", reason="database unavailable")
    beating("stopped", state="stopped")
    beating("crashed", state="crashed", reason="KeyError: 'id'", beat_at=now - timedelta(minutes=1))
    beating("silent", beat_at=now - timedelta(minutes=2))
    beating("forgotten", beat_at=now - timedelta(days=2))  # history: not looked at
    health = consumer_health(["running", "never"])
    assert {name: entry["status"] for name, entry in health.items()} == {
        "running": "running", "never": "not started", "waiting": "failing", "stopped": "stopped",
        "crashed": "failing", "silent": "failing"}
    assert health["waiting"]["reason"] == "waiting: database unavailable"
    assert health["crashed"]["reason"] == "crashed: KeyError: 'id'"
    assert health["silent"]["reason"] == "no heartbeat for 120 s (last state running)"
    assert [m["live"] for m in health["running"]["members"]] == [True, False]


@pytest.mark.django_db
def test_a_live_group_that_started_first_is_a_rival_and_a_stopped_or_silent_one_is_not(settings):
    settings.CONSUMER_HEARTBEAT_STALE_SECONDS = 30
    earlier = timezone.now() - timedelta(minutes=1)
    beating("orders", group_id="mine", member="elsewhere:1", started_at=earlier)  # my own group: never a rival
    beating("orders", group_id="old-group", member="elsewhere:2", state="stopped", started_at=earlier)
    beating("orders", group_id="old-group", member="elsewhere:3", started_at=earlier,
            beat_at=timezone.now() - timedelta(minutes=1))
    assert rival_group(consumer="orders", group="mine") is None
    beating("orders", group_id="other-group", member="elsewhere:4", started_at=earlier)
    reason = rival_group(consumer="orders", group="mine")
    assert reason.startswith("another consumer group, other-group, runs orders on this database (process elsewhere:4")
