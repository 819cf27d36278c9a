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

from console.ops.lag_history import SCHEDULE_NAME, lag_schedule_ensure
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


def _member_rows(html: str) -> dict[str, tuple[str, str]]:
    """Each member row of a page (`data-member`): (its class, its text without tags)."""
    rows = {}
    for match in re.finditer(r'<tr class="([^"]*)"[^>]* data-member="([^"]+)"[^>]*>(.*?)</tr>'
                             r'|<tr data-member="([^"]+)"(?: class="([^"]*)")?>(.*?)</tr>', html, re.S):
        member = match.group(2) or match.group(4)
        css = match.group(1) or match.group(5) or ""
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(3) or match.group(6))).strip()
        rows[member] = (css, text)
    return rows


@pytest.mark.kafka_partitions(4)
def test_each_member_shows_its_partitions_lag_and_state_and_a_dead_one_is_gone(operator, kafka):
    """Three static members of telemetry's group over 4 partitions: two live, one killed a
    while ago (its partition not reassigned yet), plus instance 1's row from before its
    restart and a member stopped long ago. Lag: the newest sample on the admin index and the
    consumer page, Kafka's own on /admin/ops/."""
    from confluent_kafka import Producer

    from streams.kafka.models import ConsumerHeartbeat
    from streams.kafka.producer import producer_config

    topic, group = kafka.name("metrics"), f"{kafka.group_prefix}-telemetry"
    now = timezone.now()

    def beat(member, instance, partitions, *, age=0.0, state="running"):
        ConsumerHeartbeat.objects.create(
            consumer="telemetry", member=member, group_id=group, topics=[topic],
            instance_id=f"{group}-{instance}" if instance else "", partitions=[[topic, p] for p in partitions],
            state=state, started_at=now - timedelta(minutes=10), beat_at=now - timedelta(seconds=age), messages=10)

    beat("host-a:101", "0", [0, 3])
    beat("host-b:102", "1", [1])
    beat("host-c:103", "2", [2], age=120)  # SIGKILLed: silent, never said it stopped
    beat("host-b:99", "1", [1], age=300)  # instance 1 before supervisord restarted it
    beat("host-d:104", "", [], age=600, state="stopped")
    LagSample.objects.bulk_create([LagSample(at=now, consumer="telemetry", group=group, topic=topic, partition=p,
                                             lag=lag, end_offset=100) for p, lag in enumerate([5, 7, 11, 13])])
    client = logged_in(operator)

    def check(html: str, lags: tuple[str, str, str]) -> None:
        rows = _member_rows(html)
        a, b, dead, unassigned = rows["host-a:101"], rows["host-b:102"], rows["host-c:103"], rows["unassigned"]
        assert f"{topic}[0,3]" in a[1] and "running" in a[1] and f" {lags[0]} " in f" {a[1]} "
        assert f"{topic}[1]" in b[1] and "running" in b[1] and f" {lags[1]} " in f" {b[1]} "
        assert "ops-red" in dead[0] and "gone" in dead[1] and re.search(r"no heartbeat for 12\d s", dead[1])
        assert "ops-red" not in a[0] + b[0]
        assert "ops-red" in unassigned[0] and f"{topic}[2]" in unassigned[1] and f" {lags[2]} " in f" {unassigned[1]} "
        assert "host-d:104" not in rows and "host-b:99" not in rows  # collapsed

    html = _fragment(client)
    row = _consumer_row(html, "telemetry")
    assert 'data-status="running"' in row and 'data-gone="1"' in row
    assert re.search(r"running \(2 live\), <span class=\"ops-down\">1 member gone</span>", html)
    check(html, ("18", "7", "11"))
    assert "2 earlier processes</a> (stopped, replaced) not shown" in html

    page = client.get("/admin/ops/consumers/telemetry/").content.decode()
    assert '<div class="ops-down" id="members-gone">1 member gone</div>' in page
    shown, past = page.split('id="past-members"')
    check(shown, ("18", "7", "11"))
    past_rows = _member_rows(past)
    assert "replaced by host-b:102" in past_rows["host-b:99"][1] and "stopped" in past_rows["host-d:104"][1]

    producer = Producer(producer_config())
    for partition, count in ((0, 2), (3, 1), (2, 4)):
        for _ in range(count):
            producer.produce(topic, value=b"{}", partition=partition)
    assert producer.flush(30) == 0
    check(client.get("/admin/ops/").content.decode(), ("3", "0", "4"))
