"""Quarantine services on the real broker, database and Celery worker."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from console.audit import ActionError, ActionRefused
from quarantine import services
from quarantine.models import QuarantineAuditEntry, QuarantineRecord
from tests.conftest import wait_until

from .conftest import BAD_METRIC, dead_letter

Status = QuarantineRecord.Status


@pytest.mark.django_db
def test_migration_creates_operators_group_and_cleanup_schedule():
    perms = set(Group.objects.get(name="operators").permissions.values_list("codename", flat=True))
    assert {"view_quarantinerecord", "release_quarantinerecord", "reprocess_quarantinerecord",
            "discard_quarantinerecord"} <= perms
    assert PeriodicTask.objects.get(task="quarantine.purge_expired").enabled


def headers_of(message) -> dict[str, bytes]:
    return dict(message.headers() or [])


@pytest.mark.django_db
def test_release_redrives_the_original_with_an_incremented_replay_count(kafka, operator):
    record = dead_letter(kafka.name("metrics"), BAD_METRIC, replay_count=1)
    assert record.replay_count == 1

    result = services.quarantine_release(record=record, by=operator, reason="consumer fixed")

    assert result.outcome == "succeeded"
    [message] = kafka.read("metrics", expected=1)
    assert message.value() == bytes(record.payload)
    assert message.key() == b"k1"
    headers = headers_of(message)
    assert headers["x-replay-count"] == b"2"
    assert headers["x-quarantine-record"] == str(record.pk).encode()
    assert headers["trace-id"] == b"abc"
    record.refresh_from_db()
    assert (record.status, record.replay_count, record.resolved_by) == (Status.RELEASED, 2, operator)
    entry = record.audit_entries.get()
    assert (entry.actor_name, entry.action, entry.outcome, entry.reason) == ("olivia", "release", "succeeded",
                                                                             "consumer fixed")
    assert entry.detail["topic"] == kafka.name("metrics")


@pytest.mark.django_db
def test_release_is_refused_at_the_replay_limit_and_audited(kafka, operator, settings):
    settings.QUARANTINE_MAX_REPLAYS = 2
    record = dead_letter(kafka.name("metrics"), BAD_METRIC, replay_count=2)

    with pytest.raises(ActionRefused, match="limit .*QUARANTINE_MAX_REPLAYS.* is 2"):
        services.quarantine_release(record=record, by=operator, reason="")

    record.refresh_from_db()
    assert record.status == Status.OPEN and record.replay_count == 2
    entry = record.audit_entries.get()
    assert entry.outcome == "refused" and "limit" in entry.detail["error"]
    assert kafka.end_offsets("metrics") == 0, "nothing may be re-driven past the limit"


@pytest.mark.django_db
def test_a_redrive_the_broker_does_not_acknowledge_leaves_the_record_open(kafka, operator):
    record = dead_letter("not a valid topic name!", BAD_METRIC)

    with pytest.raises(ActionError) as caught:
        services.quarantine_release(record=record, by=operator, reason="try")

    assert caught.value.outcome == "failed"
    record.refresh_from_db()
    assert record.status == Status.OPEN and record.replay_count == 0
    assert record.audit_entries.get().outcome == "failed"


@pytest.mark.django_db
def test_reprocess_redrives_the_operator_edited_payload(kafka, operator):
    record = dead_letter(kafka.name("metrics"), BAD_METRIC)
    fixed = b'{"id":10,"val":1.5,"time":1624378100}'

    services.quarantine_reprocess(record=record, by=operator, reason="id typo", payload=fixed)

    [message] = kafka.read("metrics", expected=1)
    assert message.value() == fixed and headers_of(message)["x-replay-count"] == b"1"
    record.refresh_from_db()
    assert record.status == Status.REPROCESSED
    assert bytes(record.payload) == json.dumps(BAD_METRIC, separators=(",", ":")).encode(), "original kept"
    entry = record.audit_entries.get()
    assert entry.detail["payload_edited"] and entry.detail["payload"] == fixed.decode()


@pytest.mark.django_db
def test_bulk_release_redrives_the_batch_and_refuses_what_it_must(kafka, operator, settings):
    settings.QUARANTINE_MAX_REPLAYS = 3
    topic = kafka.name("metrics")
    fresh = [dead_letter(topic, {**BAD_METRIC, "time": 1624378100 + i}) for i in range(3)]
    exhausted = dead_letter(topic, BAD_METRIC, replay_count=3)
    closed = dead_letter(topic, BAD_METRIC)
    services.quarantine_discard(record=closed, by=operator, reason="duplicate")

    result = services.quarantine_release_many(
        records=QuarantineRecord.objects.filter(topic=topic), by=operator, reason="bulk")

    assert result.counts() == {"succeeded": 3, "refused": 2}
    assert len(kafka.read("metrics", expected=3)) == 3
    assert set(QuarantineRecord.objects.filter(pk__in=[r.pk for r in fresh]).values_list("status", flat=True)) \
        == {Status.RELEASED}
    exhausted.refresh_from_db()
    assert exhausted.status == Status.OPEN
    assert "#%d" % exhausted.pk in result.summary()
    assert QuarantineAuditEntry.objects.filter(action="release", outcome="refused").count() == 2


@pytest.mark.django_db
def test_dry_run_changes_nothing(kafka, operator):
    record = dead_letter(kafka.name("metrics"), BAD_METRIC)
    result = services.quarantine_release(record=record, by=operator, reason="", dry_run=True)
    assert result.outcome == "dry_run"
    record.refresh_from_db()
    assert record.status == Status.OPEN and not record.audit_entries.exists()
    assert kafka.end_offsets("metrics") == 0


@pytest.mark.django_db
def test_discard_needs_a_reason_and_keeps_the_original_until_retention_ends(operator, settings):
    settings.QUARANTINE_RETENTION_DAYS = 7
    record = dead_letter("metrics", BAD_METRIC)
    with pytest.raises(ActionRefused, match="reason is required"):
        services.quarantine_discard(record=record, by=operator, reason="  ")

    services.quarantine_discard(record=record, by=operator, reason="test traffic")
    record.refresh_from_db()
    assert record.status == Status.DISCARDED and record.discard_reason == "test traffic"
    assert timedelta(days=6) < record.retain_until - timezone.now() <= timedelta(days=7)

    assert services.quarantine_purge_expired() == [], "still within retention"
    assert record.payload is not None
    purged = services.quarantine_purge_expired(now=timezone.now() + timedelta(days=8))
    assert purged == [record.pk]
    record.refresh_from_db()
    assert record.payload is None and record.purged_at is not None
    assert services.quarantine_purge_expired(now=timezone.now() + timedelta(days=9)) == []
    assert [e.action for e in record.audit_entries.order_by("id")] == ["discard", "discard", "purge"]
    assert [e.outcome for e in record.audit_entries.order_by("id")] == ["refused", "succeeded", "succeeded"]


@pytest.mark.django_db
def test_bulk_discard_is_set_based_and_refuses_closed_records(operator):
    records = [dead_letter("metrics", BAD_METRIC) for _ in range(4)]
    services.quarantine_discard(record=records[0], by=operator, reason="first")

    result = services.quarantine_discard_many(
        records=QuarantineRecord.objects.all(), by=operator, reason="noise")

    assert result.counts() == {"succeeded": 3, "refused": 1}
    assert QuarantineRecord.objects.filter(status=Status.DISCARDED, discard_reason="noise").count() == 3


def test_a_task_failing_after_its_retries_is_quarantined_and_reprocessed(kafka, processes, operator, tmp_path):
    from tests.quarantine.celery_tasks import divide

    processes.celery_worker("--include", "tests.quarantine.celery_tasks")
    out = tmp_path / "result.txt"
    sent = divide.delay(6, 0, str(out))

    record = wait_until(lambda: QuarantineRecord.objects.filter(source="task", task_id=sent.id).first(),
                        message="the failed task's quarantine record")
    assert record.task_name == "tests.quarantine.divide"
    assert record.reason.startswith("ZeroDivisionError")
    assert json.loads(bytes(record.payload))["args"] == [6, 0, str(out)]
    assert "Traceback" in record.errors[0]["traceback"]

    # Released as it was, it fails again: a new record that remembers the replay.
    services.quarantine_release(record=record, by=operator, reason="transient?")
    again = wait_until(lambda: QuarantineRecord.objects.filter(source="task").exclude(pk=record.pk).first(),
                       message="the second failure")
    assert again.replay_count == 1

    # Reprocessed with corrected arguments, it succeeds.
    payload = json.dumps({"args": [6, 3, str(out)], "kwargs": {}}).encode()
    services.quarantine_reprocess(record=again, by=operator, reason="divisor fixed", payload=payload)
    wait_until(lambda: out.exists(), message="the reprocessed task's output")
    assert out.read_text() == "2.0"
    again.refresh_from_db()
    assert again.status == Status.REPROCESSED and again.replay_count == 2



@pytest.mark.django_db(transaction=True)
def test_two_operators_releasing_at_once_redrive_the_message_once(kafka, operator):
    import threading

    from django.db import connection

    record = dead_letter(kafka.name("metrics"), BAD_METRIC)
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def release() -> None:
        try:
            start.wait()
            services.quarantine_release(record=QuarantineRecord.objects.get(pk=record.pk), by=operator, reason="")
            outcomes.append("succeeded")
        except ActionRefused:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=release) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == ["refused", "succeeded"]
    assert kafka.end_offsets("metrics") == 1, "re-driven exactly once"
    record.refresh_from_db()
    assert record.replay_count == 1
