"""Every consumer and the Celery worker SIGKILLed 10 times each under load: totals exact afterwards."""

from __future__ import annotations

import random
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from ingest.models import IngestedFile, RawSensorReading
from ingest.services import file_event, files_requeue_stale
from streams.kafka.producer import Outbound
from streams.models import ActivityEvent, MachineMetric, ProcessedOrder, Product, SensorReading
from streams.orders.demo import catalog_seed_demo, order_events
from streams.activity.demo import activity_events, sensor_events
from tests.conftest import wait_until
from tests.ingest.conftest import HEADER, rows
from tests.streams.orders.test_pipeline import expected_windows, stored_windows

from .conftest import secs
from .helpers import caught_up, kill_under_load

STALE_SECONDS = 20  # the scan's stale time here (production: INGEST_STALE_SECONDS, 900 s)

pytestmark = [pytest.mark.chaos, pytest.mark.kafka_partitions(2), pytest.mark.timeout(600)]

KILLS = 10
UPTIME = (0.5, 3.0)  # seconds a process runs (after it says it started) before it is killed
CONSUMERS = ("telemetry", "orders", "order_windows", "standardize", "processed_sink", "products", "files")
GROUP_TOPICS = {
    "telemetry": ["metrics", "workorders"], "orders": ["orders"], "order_windows": ["processed_orders"],
    "standardize": ["sensor_data", "user_activity"], "processed_sink": ["processed_data"],
    "products": ["product_registrations"], "files": ["file_events"],
}
T0 = datetime(2026, 2, 2, 12, 0, 0, tzinfo=UTC)
BASE_TIME = 1_710_000_000

N_METRICS, N_ORDERS, N_SENSORS, N_ACTIVITY, N_PRODUCTS = 6000, 3000, 2000, 1000, 400
N_FILES, FILE_ROWS = 16, 20000
CHUNKS = 12  # the load is produced in this many slices while the kills go on


def registration(i: int) -> dict:
    return {"productId": f"chaos-{i}", "productName": f"Chaos product {i}", "productDescription": "killed often",
            "price": 10.0 + i, "currency": "BRL", "stockQuantity": i, "category": "chaos"}


def test_sigkill_every_consumer_and_the_worker_under_load(kafka, processes, services, figures, inbox):
    catalog_seed_demo(count=5)
    rng = random.Random(11)
    env = {**inbox.env(), "KAFKA_CLIENT_CONFIG": "session.timeout.ms=6000,heartbeat.interval.ms=1000",
           "CONSUMER_BATCH_TIME_MS": "100",
           # The orders come up to 300 s out of order: a wider grace keeps every one on time (event time is
           # tested in tests/streams/orders/).
           "ORDERS_WINDOW_GRACE_SECONDS": "3600", "ORDERS_IDLE_CLOSE_SECONDS": "3600"}
    worker_env = {**inbox.env(), "CELERY_VISIBILITY_TIMEOUT": "5", "CELERY_UNACKED_RESTORE_INTERVAL": "1",
                  "CELERY_UNACKED_RESTORE_THROTTLE": "1", "INGEST_MAX_ATTEMPTS": "100"}

    def start(name: str) -> subprocess.Popen:
        if name == "celery":
            return processes.celery_worker(**worker_env)
        return processes.consumer(name, "--batch-size", "200", **env)

    def started(name: str, log: str) -> bool:
        return ("ready." in log) if name == "celery" else ("consumer_started" in log)

    names = [*CONSUMERS, "celery"]

    # The load: every pipeline's input, in slices produced while the processes are being killed.
    metrics = [Outbound(kafka.name("metrics"), {"id": i % 50, "val": i * 0.25, "time": BASE_TIME + i}, key=str(i % 50))
               for i in range(N_METRICS)]
    orders = order_events(N_ORDERS, now=T0 + timedelta(minutes=5), spread_seconds=300, rng=rng)
    sensors = sensor_events(N_SENSORS, now=T0, rng=rng)
    activity = activity_events(N_ACTIVITY, now=T0, rng=rng)
    products = [registration(i) for i in range(N_PRODUCTS)]
    file_names = [f"load-{n:02d}.csv" for n in range(N_FILES)]
    for n, name in enumerate(file_names):
        inbox.drop(name, HEADER + rows(FILE_ROWS, start=1594512094.0 + n * FILE_ROWS))
    slices = []
    for c in range(CHUNKS):
        part = lambda seq: seq[c * len(seq) // CHUNKS:(c + 1) * len(seq) // CHUNKS]  # noqa: E731
        slices.append(
            part(metrics)
            + [Outbound(kafka.name("orders"), e, key=e["product_id"]) for e in part(orders)]
            + [Outbound(kafka.name("sensor_data"), e, key=e["sensor_id"]) for e in part(sensors)]
            + [Outbound(kafka.name("user_activity"), e, key=e["user_id"]) for e in part(activity)]
            + [Outbound(kafka.name("product_registrations"), p, key=p["productId"]) for p in part(products)]
            + [file_event(file_path=f, file_name=f) for f in part(file_names)]
        )
    run = kill_under_load(processes=processes, start=start, started=started, names=names, slices=slices,
                          pause=2.5, kills=KILLS, uptime=UPTIME)
    current, kills, began, kills_done = run.current, run.kills, run.began, run.kills_done

    # Convergence: every group at the end of its topics, every table equal to what was produced.
    expected = expected_windows(orders)
    registrations = {p["productId"]: p for p in products}

    # What beat's periodic scan does in production (ingest.scan_inbox): a file still queued
    # after a while is queued again. A worker SIGKILLed between taking a task off the
    # Redis list and recording it as unacknowledged loses that task (kombu's Redis
    # transport has that window); this is the product's answer to it, with a short stale
    # time instead of INGEST_STALE_SECONDS (900 s).
    requeued: list[int] = []

    def converged() -> bool:
        requeued.extend(files_requeue_stale(older_than_seconds=STALE_SECONDS))
        return (
            MachineMetric.objects.count() == N_METRICS
            and ProcessedOrder.objects.count() == N_ORDERS
            and SensorReading.objects.count() == N_SENSORS
            and ActivityEvent.objects.count() == N_ACTIVITY
            and Product.objects.filter(product_id__startswith="chaos-").count() == N_PRODUCTS
            and IngestedFile.objects.filter(status=IngestedFile.Status.LOADED).count() == N_FILES
            and stored_windows() == expected
        )

    def snapshot() -> dict:
        return {
            "metrics": MachineMetric.objects.count(), "orders": ProcessedOrder.objects.count(),
            "sensors": SensorReading.objects.count(), "activity": ActivityEvent.objects.count(),
            "products": Product.objects.filter(product_id__startswith="chaos-").count(),
            "files": dict(Counter(IngestedFile.objects.values_list("status", flat=True))),
            "windows": stored_windows() == expected_windows(orders),
        }

    try:
        wait_until(converged, timeout=240, interval=1, message="every pipeline to converge after the kills")
    except BaseException:
        print("chaos sigkill: not converged:", snapshot())
        raise
    for name, logicals in GROUP_TOPICS.items():
        group = f"{kafka.group_prefix}-{name}"
        wait_until(lambda: caught_up(kafka, group, logicals), timeout=60, message=f"{name} to commit everything")
    converged_at = time.monotonic()
    time.sleep(2)  # a late replay, if any, must change nothing
    for name in names:
        assert current[name].poll() is None, f"{name} exited:\n{processes.log(current[name])[-3000:]}"

    stored_metrics = dict(((p, t), v) for p, t, v in MachineMetric.objects.values_list("parameter_id", "time", "value"))
    windows = stored_windows()
    window_orders = sum(c for c, _ in windows.values())
    stored_products = {p.product_id: p for p in Product.objects.filter(product_id__startswith="chaos-")}
    files = list(IngestedFile.objects.all())
    per_file = {f.name: RawSensorReading.objects.filter(file=f).count() for f in files}
    counts = {"metrics": MachineMetric.objects.count(), "orders": ProcessedOrder.objects.count(),
              "sensors": SensorReading.objects.count(), "activity": ActivityEvent.objects.count()}
    doubled = (max(counts["metrics"] - N_METRICS, 0) + max(counts["orders"] - N_ORDERS, 0)
               + max(window_orders - N_ORDERS, 0) + max(counts["sensors"] - N_SENSORS, 0)
               + max(counts["activity"] - N_ACTIVITY, 0) + sum(max(c - FILE_ROWS, 0) for c in per_file.values()))
    figures.record(
        "sigkill",
        kills=sum(len(k) for k in kills.values()), processes=len(names), kills_each=KILLS,
        metrics=f"{counts['metrics']}/{N_METRICS}", orders=f"{counts['orders']}/{N_ORDERS}",
        windows=f"{len(windows)}/{len(expected)}", window_orders=f"{window_orders}/{N_ORDERS}",
        sensor_readings=f"{counts['sensors']}/{N_SENSORS}", activity=f"{counts['activity']}/{N_ACTIVITY}",
        products=f"{len(stored_products)}/{N_PRODUCTS}",
        files_loaded=f"{sum(f.status == IngestedFile.Status.LOADED for f in files)}/{N_FILES}",
        file_rows=f"{sum(per_file.values())}/{N_FILES * FILE_ROWS}", doubled=doubled,
        files_reattempted=sum(f.attempts > 1 for f in files), max_file_attempts=max(f.attempts for f in files),
        kill_phase=secs(kills_done - began), converged_after_kills=secs(converged_at - kills_done),
        requeued_by_scan=len(requeued),
    )
    assert stored_metrics == {(i % 50, BASE_TIME + i): i * 0.25 for i in range(N_METRICS)}
    assert set(ProcessedOrder.objects.values_list("order_id", flat=True)) == {e["order_id"] for e in orders}
    assert windows == expected
    assert counts["sensors"] == N_SENSORS and counts["activity"] == N_ACTIVITY
    assert {pid: (p.name, p.stock_quantity) for pid, p in stored_products.items()} == {
        pid: (r["productName"], r["stockQuantity"]) for pid, r in registrations.items()}
    assert per_file == {name: FILE_ROWS for name in file_names}
    assert RawSensorReading.objects.count() == N_FILES * FILE_ROWS
    assert doubled == 0
