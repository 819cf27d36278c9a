"""PostgreSQL restarts mid-stream (telemetry consumer) and mid-file (Celery worker loading a CSV)."""

from __future__ import annotations

import re
import time

import pytest

from ingest.models import IngestedFile, RawSensorReading
from ingest.services import file_event
from streams.kafka.producer import Outbound, produce_and_wait
from streams.models import MachineMetric
from tests.conftest import wait_until
from tests.ingest.conftest import HEADER, rows

from .conftest import db_or, secs
from .helpers import caught_up, wall

pytestmark = [pytest.mark.chaos]

BASE_TIME = 1_700_000_000
DOWN_SECONDS = 5


def metric_events(kafka, start: int, count: int) -> list[Outbound]:
    return [Outbound(kafka.name("metrics"), {"id": i % 20, "val": i * 0.5, "time": BASE_TIME + i}, key=str(i % 20))
            for i in range(start, start + count)]


@pytest.mark.kafka_partitions(3)
@pytest.mark.timeout(300)
def test_postgres_restart_mid_stream(kafka, processes, services, figures):
    before, during = 40_000, 10_000
    total = before + during
    produce_and_wait(metric_events(kafka, 0, before), timeout=120)
    consumer = processes.consumer("telemetry", "--batch-size", "500")
    wait_until(lambda: MachineMetric.objects.exists(), timeout=60, interval=0.02, message="the first batch")
    stopping_at = time.monotonic()
    with services.down("postgres") as down_at:
        produce_and_wait(metric_events(kafka, before, during), timeout=120)  # produced while PostgreSQL is down
        time.sleep(max(DOWN_SECONDS - (time.monotonic() - down_at), 0))
        starting_at = time.monotonic()
    up_at = time.monotonic()
    assert consumer.poll() is None, "the consumer exited:\n" + processes.log(consumer)[-3000:]

    wait_until(lambda: db_or(0, MachineMetric.objects.count) >= total, timeout=180,
               message=f"all {total} metrics after the restart")
    group = f"{kafka.group_prefix}-telemetry"
    wait_until(lambda: caught_up(kafka, group, ["metrics", "workorders"]), timeout=60,
               message="every offset committed")
    done_at = time.monotonic()
    assert consumer.poll() is None, "the consumer exited:\n" + processes.log(consumer)[-3000:]

    stored_rows = list(MachineMetric.objects.values_list("parameter_id", "time", "value", "received_at"))
    stored = {(p, t): v for p, t, v, _ in stored_rows}
    expected = {(i % 20, BASE_TIME + i): i * 0.5 for i in range(total)}
    stored_at_stop = sum(1 for *_, r in stored_rows if r.timestamp() <= wall(down_at))
    assert stored_at_stop < total, "the consumer finished before PostgreSQL stopped; produce more"
    assert len(stored_rows) == len(stored) == total
    assert stored == expected, "stored rows differ from the produced set"
    after = [r.timestamp() for *_, r in stored_rows if r.timestamp() >= wall(starting_at)]
    resume = min(after) - wall(up_at) if after else None
    log = processes.log(consumer)
    figures.record(
        "postgres-stream",
        produced=total, produced_while_down=during, stored_before_stop=stored_at_stop, stored=len(stored),
        missing=len(set(expected) - set(stored)), doubled=len(stored_rows) - len(stored),
        down=secs(starting_at - down_at), start=secs(up_at - starting_at), resume=secs(resume),
        caught_up_after=secs(done_at - up_at), waiting_logs=log.count("consumer_waiting"),
        resumed_logs=log.count("consumer_resumed"), consumer_alive=consumer.poll() is None,
    )


@pytest.mark.timeout(300)
def test_postgres_restart_mid_file(kafka, processes, services, figures, inbox):
    # ~300k rows load in about half a second here: twice that leaves a window for the stop to land in.
    total = 600_000
    with open(inbox.root / "big.csv", "w") as fh:
        fh.write(HEADER)
        for start in range(0, total, 50_000):
            fh.write(rows(50_000, start=1594512094.0 + start))
    env = {**inbox.env(), "INGEST_PROGRESS_EVERY_ROWS": "20000"}
    processes.consumer("files", "--batch-time", "100", **env)
    worker = processes.celery_worker(**env)
    wait_until(lambda: "ready" in processes.log(worker), timeout=60, message="the worker to be ready")
    produce_and_wait([file_event(file_path="big.csv", file_name="big.csv")])
    wait_until(lambda: IngestedFile.objects.filter(status=IngestedFile.Status.LOADING).exists(),
               timeout=60, interval=0.01, message="the load to be under way")
    loading_seen = time.monotonic()
    with services.down("postgres") as down_at:
        time.sleep(DOWN_SECONDS)
        starting_at = time.monotonic()
    up_at = time.monotonic()

    final = (IngestedFile.Status.LOADED, IngestedFile.Status.FAILED, IngestedFile.Status.QUARANTINED)
    wait_until(lambda: db_or(False, lambda: IngestedFile.objects.get().status in final), timeout=180,
               message="the file to finish")
    done_at = time.monotonic()
    ingested = IngestedFile.objects.get()
    log = processes.log(worker)
    # What interrupted the load, and what each retry saw (Celery: "retry: Retry in 2s: OperationalError(...").
    interrupted_by = sorted(set(re.findall(r"\b(AdminShutdown|InterfaceError|OperationalError)\b", log.split(
        "ingest_task_retry")[0]))) if "ingest_task_retry" in log else []
    errors = sorted(set(re.findall(r"retry: Retry in \d+s: (\w+)\(", log)))
    retried = log.count("ingest_task_retry")
    loaded_before_fault = ingested.finished_at is not None and ingested.finished_at.timestamp() <= wall(down_at)
    stored = RawSensorReading.objects.filter(file=ingested).count()
    line = figures.record(
        "postgres-file",
        rows=total, status=ingested.status, rows_loaded=ingested.rows_loaded, stored=stored,
        doubled=max(stored - total, 0), attempts=ingested.attempts, task_retries=retried,
        interrupted_by=",".join(interrupted_by) or "none", retry_errors=",".join(errors) or "none",
        failed_logs=log.count("ingest_task_failed"), load_seconds=secs(ingested.load_seconds), stop_after_loading_seen=secs(down_at - loading_seen),
        down=secs(starting_at - down_at), loaded_after_restart=secs(done_at - up_at),
        reason=repr(ingested.reason[:120]),
    )
    assert not loaded_before_fault, "the file loaded before PostgreSQL stopped; use a bigger file\n" + line
    assert ingested.status == IngestedFile.Status.LOADED, f"{ingested.status}: {ingested.reason}\n{log[-4000:]}"
    assert ingested.rows_loaded == total
    assert stored == total
