"""The whole path on the real services: inbox -> file_events -> files consumer ->
Celery process_file -> PostgreSQL, with quarantine for what is wrong."""

from __future__ import annotations

import csv
import json
import os
import signal
import statistics
import time
from collections import defaultdict
from pathlib import Path

import pytest
from django.core.management import call_command

from ingest.models import IngestedFile, RawSensorReading, SensorAggregate
from ingest.services import file_event, inbox_publish
from quarantine.models import QuarantineRecord
from streams.kafka.producer import Outbound, produce_and_wait
from tests.conftest import wait_until
from tests.ingest.conftest import HEADER, SAMPLES, rows

Status = IngestedFile.Status
METRICS = ("co", "humidity", "lpg", "smoke", "temp")


def start_pipeline(processes, inbox, **extra):
    env = {**inbox.env(), **extra}
    processes.consumer("files", "--batch-time", "100", **env)
    return processes.celery_worker(**env)


def independent_stats(path: Path) -> dict[tuple[str, str], dict]:
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            for metric in METRICS:
                values[(row["device"], metric)].append(float(row[metric]))
    return {key: {"count": len(v), "min": min(v), "max": max(v), "mean": statistics.fmean(v),
                  "std": statistics.stdev(v), "median": statistics.median(v)} for key, v in values.items()}


def test_sample_files_load_or_quarantine_with_line_column_rule(processes, kafka, inbox):
    for name in ("split_1.csv", "split_5.csv", "split_2.csv", "split_3.csv", "split_10.csv"):
        inbox.drop(name, SAMPLES / name)
        past = time.time() - 5
        os.utime(inbox.root / name, (past, past))
    start_pipeline(processes, inbox)
    call_command("watch_inbox", "--once")
    wait_until(lambda: IngestedFile.objects.exclude(status__in=IngestedFile.IN_PROGRESS).count() == 5,
               timeout=90, message="five files processed")
    files = {f.name: f for f in IngestedFile.objects.all()}

    for name in ("split_1.csv", "split_5.csv"):
        loaded = files[name]
        assert loaded.status == Status.LOADED, loaded.reason
        assert loaded.rows_total == loaded.rows_loaded == 10000
        assert RawSensorReading.objects.filter(file=loaded).count() == 10000
        expected = independent_stats(SAMPLES / name)
        got = {(a.device, a.metric): a for a in SensorAggregate.objects.filter(file=loaded)}
        assert set(got) == set(expected)
        for key, want in expected.items():
            for stat, value in want.items():
                assert getattr(got[key], stat) == pytest.approx(value, rel=1e-9, abs=1e-12), (key, stat)

    for name, rule_column in (("split_2.csv", ("smoke", "number")), ("split_3.csv", ("temp", "range")),
                              ("split_10.csv", ("temp", "range"))):
        bad = files[name]
        assert bad.status == Status.QUARANTINED
        assert bad.rows_total == 10001 and bad.rows_rejected == 1
        errors = {(e["column"], e["rule"]) for e in bad.errors}
        assert all(e["line"] == 10002 for e in bad.errors)
        assert rule_column in errors
        assert not (inbox.root / name).exists()
        assert Path(bad.quarantine.file_path).is_file()
        assert bad.quarantine.errors == bad.errors
    assert RawSensorReading.objects.count() == 20000

    # Overall statistics cover both clean files (refreshed by the task after each load).
    def overall_complete():
        return sum(SensorAggregate.objects.filter(file__isnull=True, metric="temp").values_list("count", flat=True)) == 20000
    wait_until(overall_complete, timeout=30, message="overall aggregates")


def test_paths_that_must_not_be_followed_are_dead_lettered(processes, kafka, inbox, tmp_path):
    outside = tmp_path / "secret.csv"
    outside.write_text(HEADER + rows(1))
    os.symlink(outside, inbox.root / "link.csv")
    inbox.drop("notes.txt", "hello")
    inbox.drop("huge.csv", HEADER + rows(200))
    topic = kafka.name("file_events")
    events = [
        ({"file_path": "../../etc/passwd", "file_name": "passwd"}, "parent_path"),
        ({"file_path": "/etc/passwd", "file_name": "passwd"}, "absolute_path"),
        ({"file_path": "link.csv", "file_name": "link.csv"}, "outside_inbox"),
        ({"file_path": "nowhere.csv", "file_name": "nowhere.csv"}, "missing"),
        ({"file_path": "notes.txt", "file_name": "notes.txt"}, "not_csv"),
        ({"file_path": "huge.csv", "file_name": "huge.csv"}, "too_large"),
        ({"file_name": "x.csv"}, "required"),
    ]
    produce_and_wait([Outbound(topic, e, key="k") for e, _ in events])
    start_pipeline(processes, inbox, INGEST_MAX_FILE_BYTES="5000")
    wait_until(lambda: QuarantineRecord.objects.filter(source="message").count() == len(events),
               message="every bad event quarantined")
    rules = sorted(r.errors[0]["rule"] for r in QuarantineRecord.objects.filter(source="message"))
    assert rules == sorted(rule for _, rule in events)
    reasons = set(QuarantineRecord.objects.values_list("reason", flat=True))
    assert "file_path must not contain '..': '../../etc/passwd'" in reasons
    assert "'huge.csv' is too large: 14,839 bytes, the limit is 5,000" in reasons or any("too large" in r for r in reasons)
    assert len(kafka.read("dead_letters", expected=len(events))) == len(events)
    assert IngestedFile.objects.count() == 0


def test_same_file_twice_is_a_duplicate(processes, kafka, inbox):
    content = HEADER + rows(500)
    inbox.drop("a.csv", content)
    inbox.drop("b.csv", content)
    start_pipeline(processes, inbox)
    produce_and_wait([file_event(file_path="a.csv", file_name="a.csv")])
    wait_until(lambda: IngestedFile.objects.filter(status=Status.LOADED).exists(), message="a.csv loaded")
    # b.csv has the same content; a.csv announced again is a replay.
    produce_and_wait([file_event(file_path="b.csv", file_name="b.csv"), file_event(file_path="a.csv", file_name="a.csv")])
    wait_until(lambda: IngestedFile.objects.filter(status=Status.DUPLICATE).exists(), message="b.csv duplicate")
    time.sleep(1)
    a, b = IngestedFile.objects.get(name="a.csv"), IngestedFile.objects.get(name="b.csv")
    assert a.status == Status.LOADED and b.status == Status.DUPLICATE and b.duplicate_of == a
    assert IngestedFile.objects.count() == 2
    assert RawSensorReading.objects.count() == 500


def test_a_file_still_being_written_is_announced_once_complete(kafka, inbox, db):
    target = inbox.root / "slow.csv"
    with open(target, "w") as fh:
        fh.write(HEADER + rows(10))
        fh.flush()
        assert inbox_publish().published == []  # just written to: not complete yet
        assert inbox_publish().pending == ["slow.csv"]
        fh.write(rows(10, start=1594600000.0))
    time.sleep(0.6)
    assert inbox_publish().published == ["slow.csv"]
    assert inbox_publish().published == []  # announced once
    ignored = inbox.root / ".hidden.csv"
    ignored.write_text(HEADER)
    (inbox.root / "upload.csv.part").write_text(HEADER)
    time.sleep(0.6)
    assert inbox_publish().published == []
    [event] = kafka.read("file_events", expected=1)
    assert json.loads(event.value()) == {"file_path": "slow.csv", "file_name": "slow.csv"}


def test_watcher_announces_a_dropped_file(processes, kafka, inbox):
    watcher = processes.start("watch_inbox", **inbox.env())
    wait_until(lambda: "watching" in processes.log(watcher), message="the watcher to start")
    inbox.drop("dropped.csv", HEADER + rows(5))
    messages = kafka.read("file_events", expected=1, timeout=20)
    assert [json.loads(m.value())["file_path"] for m in messages] == ["dropped.csv"]
    assert processes.stop(watcher) == 0
    assert "stopped cleanly" in processes.log(watcher)


@pytest.mark.slow
def test_worker_killed_mid_load_ends_loaded_exactly_once(processes, kafka, inbox):
    total = 250_000
    with open(inbox.root / "big.csv", "w") as fh:
        fh.write(HEADER)
        for start in range(0, total, 50_000):
            fh.write(rows(50_000, start=1594512094.0 + start))
    # A short visibility timeout so the killed worker's unacknowledged task comes back quickly.
    env = {"CELERY_VISIBILITY_TIMEOUT": "5", "CELERY_UNACKED_RESTORE_INTERVAL": "1",
           "CELERY_UNACKED_RESTORE_THROTTLE": "1", "INGEST_PROGRESS_EVERY_ROWS": "20000"}
    worker = start_pipeline(processes, inbox, **env)
    produce_and_wait([file_event(file_path="big.csv", file_name="big.csv")])
    wait_until(lambda: IngestedFile.objects.filter(status=Status.LOADING, rows_total__gt=0).exists(),
               timeout=60, interval=0.05, message="the load to be under way")
    # The whole worker dies at once: the pool processes first, then the main process.
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
    for child in children:
        os.kill(int(child), signal.SIGKILL)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    ingested = IngestedFile.objects.get()
    assert ingested.status == Status.LOADING, "the load finished before the kill; use a bigger file"
    assert RawSensorReading.objects.count() == 0  # the open transaction died with the worker
    time.sleep(1)
    processes.celery_worker(**{**inbox.env(), **env})
    wait_until(lambda: IngestedFile.objects.get().status == Status.LOADED, timeout=120,
               message="the file loaded after the restart")
    time.sleep(3)  # a second redelivery, if any, must not load it again
    ingested.refresh_from_db()
    assert ingested.rows_loaded == total and ingested.attempts >= 2
    assert RawSensorReading.objects.count() == total
    assert sum(SensorAggregate.objects.filter(file=ingested, metric="co").values_list("count", flat=True)) == total
