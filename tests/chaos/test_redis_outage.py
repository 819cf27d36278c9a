"""Redis (the Celery broker) restarts with file tasks queued, and while files are registered."""

from __future__ import annotations

import re
import time

import pytest
import redis
from django.conf import settings

from console.ops.health import consumer_states
from ingest.models import IngestedFile, RawSensorReading
from ingest.services import file_event, files_requeue_stale
from streams.kafka.producer import produce_and_wait
from tests.conftest import wait_until
from tests.ingest.conftest import HEADER, rows

from .conftest import db_or, secs

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]

Status = IngestedFile.Status
ROWS = 5_000
NATURAL_WAIT = 60  # seconds the pipeline gets to recover by itself before the stale scan is tried
STALE_SECONDS = 5
DOWN_SECONDS = 25  # after the first file registered: longer than Celery's 20 result-backend reconnects (1 s apart)


def drop(inbox, names: list[str], offset: int) -> None:
    for n, name in enumerate(names):
        inbox.drop(name, HEADER + rows(ROWS, start=1594512094.0 + (offset + n) * ROWS))
    produce_and_wait([file_event(file_path=name, file_name=name) for name in names])


def queue_length(kafka) -> int | None:
    try:
        return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).llen(kafka.celery_queue)
    except redis.RedisError:
        return None


def test_redis_restart_with_tasks_queued(kafka, processes, services, figures, inbox):
    env = inbox.env()
    files = processes.consumer("files", "--batch-time", "100", **env)
    queued_first = [f"before-{n}.csv" for n in range(3)]
    drop(inbox, queued_first, 0)
    wait_until(lambda: IngestedFile.objects.filter(status=Status.QUEUED).count() == 3,
               message="three files registered and queued")
    wait_until(lambda: queue_length(kafka) == 3, timeout=10, message="three tasks in the Redis queue")

    # While Redis is down, queueing a task fails (each attempt holds the consumer's batch while Celery
    # retries the broker and the result backend); the batch is held and tried again, never dropped.
    dropped_while_down = [f"during-{n}.csv" for n in range(3)]
    with services.down("redis") as down_at:
        drop(inbox, dropped_while_down, 3)
        wait_until(lambda: IngestedFile.objects.count() >= 4, timeout=60,
                   message="a file registered while Redis is down")
        time.sleep(DOWN_SECONDS)
        registered_while_down = IngestedFile.objects.count() - len(queued_first)
        state_while_down = consumer_states().get("files", {})
        starting_at = time.monotonic()
    up_at = time.monotonic()
    assert files.poll() is None, "the files consumer exited:\n" + processes.log(files)[-3000:]
    in_redis_after_restart = queue_length(kafka)

    worker = processes.celery_worker(**env)
    worker_at = time.monotonic()
    names = queued_first + dropped_while_down

    def loaded() -> int:
        return db_or(0, lambda: IngestedFile.objects.filter(status=Status.LOADED).count())

    recovered_by = "pipeline"
    requeued: list[int] = []
    deadline = time.monotonic() + NATURAL_WAIT
    while loaded() < len(names) and time.monotonic() < deadline:
        time.sleep(0.25)
    if loaded() < len(names):
        # Only the periodic scan (ingest.scan_inbox: files_requeue_stale) is left to recover them.
        stuck = dict(IngestedFile.objects.exclude(status=Status.LOADED).values_list("name", "status"))
        recovered_by = f"stale_requeue(INGEST_STALE_SECONDS={STALE_SECONDS}, stuck={sorted(stuck)})"
        time.sleep(STALE_SECONDS)
        requeued = files_requeue_stale(older_than_seconds=STALE_SECONDS)
        wait_until(lambda: loaded() == len(names), timeout=60, message="every file after the stale requeue")
    all_loaded_at = time.monotonic()
    time.sleep(1)  # a second delivery of a task, if any, must not load a file twice

    by_name = {f.name: f for f in IngestedFile.objects.all()}
    counts = {name: RawSensorReading.objects.filter(file=by_name[name]).count() for name in names}
    log = processes.log(files)
    failures_while_down = {"waiting": log.count("consumer_waiting"), "batch_failed": log.count("consumer_batch_failed")}
    failure_reasons = sorted(set(re.findall(r"consumer_(?:waiting|batch_failed) [^\n]*?reason=(\w+)", log)))
    figures.record(
        "redis",
        files=len(names), queued_before_stop=len(queued_first), dropped_while_down=len(dropped_while_down),
        registered_while_down=registered_while_down, in_redis_after_restart=in_redis_after_restart,
        consumer_waiting_logs=failures_while_down["waiting"], consumer_failed_logs=failures_while_down["batch_failed"],
        failure_classes=",".join(failure_reasons) or "none",
        state_while_down=repr(f"{state_while_down.get('status')}: {state_while_down.get('reason', '')}"[:110]),
        loaded=sum(f.status == Status.LOADED for f in by_name.values()), rows=sum(counts.values()),
        doubled=sum(max(c - ROWS, 0) for c in counts.values()), recovered_by=recovered_by,
        requeued=len(requeued), down=secs(starting_at - down_at), start=secs(up_at - starting_at),
        all_loaded_after_worker_start=secs(all_loaded_at - worker_at),
        bound=secs(NATURAL_WAIT + STALE_SECONDS if requeued else all_loaded_at - worker_at),
        consumer_alive=files.poll() is None, resumed_logs=log.count("consumer_resumed"),
    )
    assert set(by_name) == set(names)
    assert all(f.status == Status.LOADED for f in by_name.values()), {n: (f.status, f.reason) for n, f in by_name.items()}
    assert counts == {name: ROWS for name in names}
    assert worker.poll() is None
