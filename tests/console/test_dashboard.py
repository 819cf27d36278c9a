"""The dashboard on the admin index, the lag history and the consumer page, against the
real broker and real `run_consumer` subprocesses."""

from __future__ import annotations

import re
import signal
import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from console.lag_history import SCHEDULE_NAME, lag_schedule_ensure
from console.models import LagSample
from console.tasks import sample_lag
from streams.kafka.producer import Outbound, produce_and_wait
from tests.conftest import committed, wait_until

from .conftest import logged_in

pytestmark = pytest.mark.services


def _consumer_row(html: str, name: str) -> str:
    match = re.search(rf'<tr class="ops-consumer[^"]*" data-consumer="{name}"[^>]*>', html)
    assert match, f"no row for consumer {name}"
    return match.group(0)


def _fragment(client) -> str:
    response = client.get("/admin/ops/dashboard/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_admin_index_is_the_dashboard_for_operators_only(operator, kafka):
    index = logged_in(operator).get("/admin/")
    assert index.status_code == 200
    html = index.content.decode()
    assert 'id="ops-dashboard"' in html and 'data-url="/admin/ops/dashboard/"' in html
    for pipeline in ("files", "telemetry", "report", "products", "orders", "sensors"):
        assert f'data-pipeline="{pipeline}"' in html, pipeline
    assert "/admin/django_celery_beat/periodictask/" in html and "/admin/django_celery_results/taskresult/" in html
    assert "Kafka: <strong class=\"ops-up\">up</strong>" in html
    assert 'class="app-streams module' in html  # Django's app list stays, below the dashboard

    viewer = get_user_model().objects.create_user("no-ops", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(content_type__app_label="streams",
                                                           codename__startswith="view_"))
    client = logged_in(viewer)
    index = client.get("/admin/")
    assert index.status_code == 200 and 'id="ops-dashboard"' not in index.content.decode()
    assert client.get("/admin/ops/dashboard/").status_code == 403
    assert client.get("/admin/ops/consumers/telemetry/").status_code == 403


def test_the_dashboard_renders_and_says_so_when_kafka_is_down(operator, kafka, settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:1"
    settings.CONSOLE_DASHBOARD_KAFKA_TIMEOUT_SECONDS = 0.5
    started = time.monotonic()
    html = _fragment(logged_in(operator))
    assert time.monotonic() - started < 5
    assert "unreachable" in html and 'data-consumer="telemetry"' in html


def test_a_live_consumer_shows_and_turns_red_when_it_stops(operator, kafka, processes, settings):
    settings.CONSUMER_HEARTBEAT_STALE_SECONDS = 3.0
    client = logged_in(operator)
    consumer = processes.consumer("telemetry", "--batch-time", "50", CONSUMER_HEARTBEAT_SECONDS="0.5")
    wait_until(lambda: 'data-status="running" data-red="0"' in _consumer_row(_fragment(client), "telemetry"),
               message="telemetry running on the dashboard")

    consumer.kill()  # SIGKILL: no goodbye heartbeat, the row goes silent
    consumer.wait()
    killed = time.monotonic()
    wait_until(lambda: 'data-red="1"' in _consumer_row(_fragment(client), "telemetry"), timeout=15,
               message="telemetry red on the dashboard")
    assert time.monotonic() - killed <= settings.CONSUMER_HEARTBEAT_STALE_SECONDS + 3
    html = _fragment(client)
    assert 'data-status="failing"' in _consumer_row(html, "telemetry")
    assert 'data-alert="consumer_heartbeat_missing" data-subject="telemetry"' in html

    # A clean stop says "stopped" at once, and is red too: nothing consumes the topic.
    consumer = processes.consumer("telemetry", "--batch-time", "50", CONSUMER_HEARTBEAT_SECONDS="0.5")
    wait_until(lambda: 'data-status="running"' in _consumer_row(_fragment(client), "telemetry"),
               message="telemetry running again")
    processes.stop(consumer, signal.SIGTERM)
    row = wait_until(lambda: (r := _consumer_row(_fragment(client), "telemetry")) and 'data-status="stopped"' in r
                     and r, timeout=10, message="telemetry stopped")
    assert 'data-red="1"' in row


def test_lag_is_sampled_by_the_task_and_pruned_by_retention(kafka, transactional_db, settings):
    produce_and_wait([Outbound(kafka.name("metrics"), {"id": i, "val": 1.0, "time": 1624378100 + i})
                      for i in range(3)])
    old = LagSample.objects.create(at=timezone.now() - timedelta(hours=25), consumer="telemetry", group="g",
                                   topic="t", partition=0, lag=1, end_offset=1)
    assert sample_lag() > 0
    rows = LagSample.objects.filter(consumer="telemetry")
    assert not LagSample.objects.filter(pk=old.pk).exists()  # older than CONSOLE_LAG_HISTORY_HOURS (24)
    metrics = rows.get(topic=kafka.name("metrics"), partition=0)
    assert (metrics.lag, metrics.end_offset, metrics.committed) == (3, 3, None)
    assert metrics.group == f"{kafka.group_prefix}-telemetry"
    assert len({r.at for r in LagSample.objects.all()}) == 1  # one sampling, one time

    settings.CONSOLE_LAG_HISTORY_HOURS = 0.0001  # everything but what is sampled now
    time.sleep(0.5)
    sample_lag()
    assert len({r.at for r in LagSample.objects.all()}) == 1


def test_the_beat_entry_follows_its_setting(transactional_db, settings):
    task = PeriodicTask.objects.get(name=SCHEDULE_NAME)  # created after migrate
    assert (task.task, task.interval.every, task.interval.period) == ("console.sample_lag", 30, "seconds")
    assert lag_schedule_ensure() == "unchanged"
    settings.CONSOLE_LAG_SAMPLE_SECONDS = 10
    assert lag_schedule_ensure() == "updated"
    assert PeriodicTask.objects.get(name=SCHEDULE_NAME).interval.every == 10
    settings.CONSOLE_LAG_SAMPLE_SECONDS = 0
    assert lag_schedule_ensure() == "removed"


def test_the_consumer_page_shows_lag_falling_as_the_consumer_catches_up(operator, kafka, processes):
    produce_and_wait([Outbound(kafka.name("metrics"), {"id": 7, "val": float(i), "time": 1624378100 + i})
                      for i in range(50)])
    sample_lag()  # the consumer is stopped: 50 behind
    consumer = processes.consumer("telemetry", "--batch-time", "50")
    group = f"{kafka.group_prefix}-telemetry"
    wait_until(lambda: committed(kafka, group, ["metrics"]) == (50, 50), message="telemetry caught up")
    sample_lag()
    response = logged_in(operator).get("/admin/ops/consumers/telemetry/")
    assert response.status_code == 200
    lags = [lag for _at, lag in response.context["page"].partitions[f"{kafka.name('metrics')}[0]"]]
    assert lags == [50, 0]
    html = response.content.decode()
    assert "<svg" in html and "lag of telemetry per partition over time" in html
    assert "messages per second committed by telemetry" in html  # throughput between the two samples
    assert consumer.pid and f":{consumer.pid}" in html  # its process's heartbeat
    assert logged_in(operator).get("/admin/ops/consumers/no-such-consumer/").status_code == 404

    html = _fragment(logged_in(operator))  # the dashboard's sparkline and throughput come from the same samples
    assert 'aria-label="lag over time, newest 0, highest 50"' in html


def test_batch_latency_is_a_histogram_in_metrics_and_p50_p99_on_the_consumer_page(operator, kafka, processes,
                                                                                  client):
    from streams.kafka.models import ConsumerHeartbeat

    produce_and_wait([Outbound(kafka.name("metrics"), {"id": 3, "val": float(i), "time": 1624378100 + i})
                      for i in range(20)])
    processes.consumer("telemetry", "--batch-time", "50", CONSUMER_HEARTBEAT_SECONDS="0.5")
    wait_until(lambda: ConsumerHeartbeat.objects.filter(consumer="telemetry", batches__gt=0,
                                                        batch_seconds_sum__gt=0).exists(),
               message="a heartbeat with a batch timed")
    beat = ConsumerHeartbeat.objects.filter(consumer="telemetry", batches__gt=0).first()
    assert beat.batch_buckets["inf"] == beat.batches  # every batch is at or under +Inf
    scrape = client.get("/metrics").content.decode()
    member = re.escape(beat.member)
    assert re.search(rf'console_consumer_batch_seconds_bucket\{{consumer="telemetry",le="\+Inf",member="{member}"\}} [1-9]',
                     scrape), scrape[-2000:]
    assert re.search(rf'console_consumer_batch_seconds_sum\{{consumer="telemetry",member="{member}"\}} ', scrape)
    html = logged_in(operator).get("/admin/ops/consumers/telemetry/").content.decode()
    assert "Batch p50 / p99" in html


def test_the_consumer_page_counts_dead_letters_per_minute(operator, kafka):
    from tests.quarantine.conftest import dead_letter

    for i in range(3):
        dead_letter(kafka.name("metrics"), {"id": "x", "val": "bad", "n": i}, consumer="telemetry")
    dead_letter(kafka.name("orders"), {"order_id": 1}, consumer="order_validator")
    response = logged_in(operator).get("/admin/ops/consumers/telemetry/")
    page = response.context["page"]
    assert page.dead_letters_last_minute == 3 and sum(n for _m, n in page.dead_letters_per_minute) == 3
    html = response.content.decode()
    assert "3 in the current minute" in html and "dead letters of telemetry per minute" in html
    quiet = logged_in(operator).get("/admin/ops/consumers/products/").content.decode()
    assert "0 in the current minute" in quiet and "None in this window." in quiet
