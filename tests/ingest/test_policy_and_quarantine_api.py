"""Partial acceptance, and the services the quarantine console calls."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User

from ingest.models import IngestedFile, RawSensorReading, SensorAggregate
from ingest.services import (
    quarantined_file_original,
    quarantined_file_rejected_rows,
    quarantined_file_release,
    quarantined_file_reprocess,
)
from tests.ingest.conftest import HEADER, rows

pytestmark = pytest.mark.django_db
Status = IngestedFile.Status

RANGE_BAD = '"1594512999.0","b8:27:eb:bf:9d:51","0.004","51.0","True","0.007","False","0.02","-100.0"\n'
UNPARSEABLE = '"","","","","","","","INVALID",""\n'


def mixed_file() -> str:
    # 100 good rows, a range error on line 52 and an unparseable row on line 103.
    return HEADER + rows(50) + RANGE_BAD + rows(50, start=1594600000.0) + UNPARSEABLE


@pytest.fixture
def operator(db):
    return User.objects.create_user("operator")


def test_partial_acceptance_loads_valid_rows_and_quarantines_the_rest(inbox, settings):
    settings.INGEST_PARTIAL_ACCEPTANCE = True
    settings.INGEST_MAX_REJECTED_SHARE = 0.05
    ingested = inbox.process(inbox.drop("mixed.csv", mixed_file()))
    assert ingested.status == Status.LOADED
    assert (ingested.rows_total, ingested.rows_valid, ingested.rows_rejected, ingested.rows_loaded) == (102, 100, 2, 100)
    assert RawSensorReading.objects.filter(file=ingested).count() == 100
    record = ingested.quarantine
    assert record is not None and record.error_count == ingested.error_count
    lines = list(quarantined_file_rejected_rows(record=record))
    assert lines == [HEADER.rstrip("\n"), RANGE_BAD.rstrip("\n"), UNPARSEABLE.rstrip("\n")]


def test_partial_acceptance_above_threshold_quarantines_whole_file(inbox, settings):
    settings.INGEST_PARTIAL_ACCEPTANCE = True
    settings.INGEST_MAX_REJECTED_SHARE = 0.01
    ingested = inbox.process(inbox.drop("mixed.csv", mixed_file()))
    assert ingested.status == Status.QUARANTINED
    assert "above 1.00%" in ingested.reason
    assert RawSensorReading.objects.count() == 0


def test_default_policy_quarantines_whole_file_with_every_error(inbox):
    ingested = inbox.process(inbox.drop("mixed.csv", mixed_file()))
    assert ingested.status == Status.QUARANTINED
    assert [(e["line"], e["column"], e["rule"]) for e in ingested.errors][:2] == [(52, "temp", "range"), (103, "ts", "required")]
    assert ingested.error_count == 10  # one on line 52, nine on line 103
    original = quarantined_file_original(record=ingested.quarantine)
    assert original.parent == inbox.quarantine.resolve() and original.read_text() == mixed_file()


def test_release_valid_rows_loads_exactly_once(inbox, operator):
    ingested = inbox.process(inbox.drop("mixed.csv", mixed_file()))
    record = ingested.quarantine
    released = quarantined_file_release(record=record, by=operator, reason="checked", mode="valid_rows")
    assert released.status == Status.LOADED and released.rows_loaded == 100 and released.release_mode == "valid_rows"
    again = quarantined_file_release(record=record, by=operator, reason="checked", mode="valid_rows")
    assert again.rows_loaded == 100
    assert RawSensorReading.objects.filter(file=ingested).count() == 100
    assert SensorAggregate.objects.filter(file=ingested, metric="temp").exists()
    record.refresh_from_db()
    assert record.status == "open"  # the caller changes it


def test_release_as_is_overrides_rules_but_drops_unparseable_rows(inbox, operator):
    ingested = inbox.process(inbox.drop("mixed.csv", mixed_file()))
    released = quarantined_file_release(record=ingested.quarantine, by=operator, reason="sensor recalibrated",
                                        mode="as_is")
    assert released.rows_loaded == 101
    assert RawSensorReading.objects.filter(file=ingested, temp=-100.0).count() == 1
    assert [e["line"] for e in released.errors] == [103] * len(released.errors)
    quarantined_file_release(record=ingested.quarantine, by=operator, reason="again", mode="as_is")
    assert RawSensorReading.objects.filter(file=ingested).count() == 101


def test_release_rejects_an_unknown_mode(inbox, operator):
    ingested = inbox.process(inbox.drop("mixed.csv", mixed_file()))
    with pytest.raises(ValueError, match="mode must be one of"):
        quarantined_file_release(record=ingested.quarantine, by=operator, reason="", mode="everything")


def test_reprocess_moves_the_original_back_and_announces_it(inbox, operator, kafka, django_capture_on_commit_callbacks):
    ingested = inbox.process(inbox.drop("sub/mixed.csv", mixed_file()))
    record = ingested.quarantine
    with django_capture_on_commit_callbacks(execute=True):
        again = quarantined_file_reprocess(record=record, by=operator)
    assert again.status == Status.QUEUED and again.id == ingested.id
    assert (inbox.root / "sub/mixed.csv").read_text() == mixed_file()
    [event] = kafka.read("file_events", expected=1)
    assert json.loads(event.value()) == {"file_path": "sub/mixed.csv", "file_name": "mixed.csv"}
    # The consumer and the task, as they would run on that event: quarantined again, a new record.
    result = inbox.process("sub/mixed.csv")
    assert result.id == ingested.id and result.status == Status.QUARANTINED
    assert result.quarantine_id != record.id


def test_reprocess_with_corrected_content_loads(inbox, operator, kafka, django_capture_on_commit_callbacks):
    ingested = inbox.process(inbox.drop("mixed.csv", mixed_file()))
    record = ingested.quarantine
    fixed = (HEADER + rows(50) + rows(50, start=1594600000.0)).encode()
    with django_capture_on_commit_callbacks(execute=True):
        again = quarantined_file_reprocess(record=record, by=operator, content=fixed)
    assert (inbox.root / "mixed.csv").read_bytes() == fixed
    assert quarantined_file_original(record=record).is_file()  # the original stays for the audit
    assert kafka.read("file_events", expected=1)
    result = inbox.process("mixed.csv")
    assert result.id == again.id and result.status == Status.LOADED and result.rows_loaded == 100
    assert result.quarantine_id == record.id  # still linked to the record it came back from


def test_stalled_file_is_queued_again_and_loads_once(inbox, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    from ingest.services import file_process, file_register, files_requeue_stale

    inbox.drop("stalled.csv", HEADER + rows(40))
    with django_capture_on_commit_callbacks(execute=False):
        ingested = file_register(file_path="stalled.csv", file_name="stalled.csv")
    # Its worker died mid-load an hour ago.
    IngestedFile.objects.filter(id=ingested.id).update(status=Status.LOADING,
                                                       updated_at=timezone.now() - timedelta(hours=1))
    assert files_requeue_stale(older_than_seconds=3600 * 2) == []
    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert files_requeue_stale(older_than_seconds=600) == [ingested.id]
    assert len(queued) == 1
    assert file_process(file_id=ingested.id).status == Status.LOADED
    assert file_process(file_id=ingested.id).rows_loaded == 40  # a second run changes nothing
    assert RawSensorReading.objects.filter(file=ingested).count() == 40


def test_reprocess_never_merges_with_another_registration(inbox, operator, kafka, django_capture_on_commit_callbacks):
    good = HEADER + rows(30)
    first = inbox.process(inbox.drop("a.csv", good))
    assert first.status == Status.LOADED
    (inbox.root / "a.csv").unlink()
    bad = inbox.process(inbox.drop("a.csv", mixed_file()))
    assert bad.status == Status.QUARANTINED and bad.id != first.id
    with django_capture_on_commit_callbacks(execute=True):
        again = quarantined_file_reprocess(record=bad.quarantine, by=operator, content=good.encode())
    assert again.path == "a-1.csv"
    result = inbox.process("a-1.csv")
    assert result.status == Status.DUPLICATE and result.duplicate_of_id == first.id
    first.refresh_from_db()
    assert first.status == Status.LOADED and RawSensorReading.objects.filter(file=first).count() == 30


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("content", ["good", "bad"])
def test_concurrent_runs_of_the_task_load_or_quarantine_once(inbox, content):
    """A redelivered task may run while the first is still loading."""
    import threading
    from unittest import mock

    from django.db import connection

    from ingest.services import file_process, file_register

    text = HEADER + rows(20000) if content == "good" else mixed_file()
    inbox.drop("twice.csv", text)
    with (mock.patch("ingest.services.registration.queue_processing"),
          mock.patch("ingest.services.processing.refresh_overall_on_commit")):
        ingested = file_register(file_path="twice.csv", file_name="twice.csv")
        results, errors = [], []

        def run():
            try:
                results.append(file_process(file_id=ingested.id).status)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=run) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert errors == []
    ingested.refresh_from_db()
    if content == "good":
        assert ingested.status == Status.LOADED and set(results) == {"loaded"}
        assert RawSensorReading.objects.filter(file=ingested).count() == 20000
    else:
        assert ingested.status == Status.QUARANTINED and set(results) == {"quarantined"}
        from quarantine.models import QuarantineRecord

        assert QuarantineRecord.objects.filter(source="file").count() == 1
