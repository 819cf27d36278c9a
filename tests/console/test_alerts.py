"""Each alert fires when its threshold is passed and clears when it is not; /healthz and
/metrics show it. The alerts read PostgreSQL only, so the rows they read are made here."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from console.ops.alerts import alerts_active
from console.models import LagSample
from ingest.models import IngestedFile
from quarantine.models import QuarantineRecord
from streams.models import ConsumerHeartbeat
from tests.quarantine.conftest import dead_letter

pytestmark = pytest.mark.django_db


def active() -> set[tuple[str, str]]:
    return {(a.name, a.subject) for a in alerts_active()}


def lag(seconds_ago: float, value: int, consumer: str = "telemetry") -> None:
    LagSample.objects.create(at=timezone.now() - timedelta(seconds=seconds_ago), consumer=consumer, group="g",
                             topic="metrics", partition=0, lag=value, end_offset=1000)


def test_nothing_is_active_on_a_quiet_system():
    assert alerts_active() == []


def test_lag_above_the_maximum(settings):
    settings.CONSOLE_ALERT_LAG_MAX = 100
    lag(5, 101)
    assert ("consumer_lag_high", "telemetry") in active()
    lag(1, 100)  # the newest sample is what counts
    assert ("consumer_lag_high", "telemetry") not in active()


def test_a_stale_sample_does_not_alert(settings):
    settings.CONSOLE_ALERT_LAG_MAX = 100
    lag(settings.CONSOLE_LAG_SAMPLE_SECONDS * 4, 5000)
    assert active() == set()


def test_lag_growing_for_the_whole_window(settings):
    settings.CONSOLE_ALERT_LAG_GROWING_MINUTES = 1
    lag(50, 10)
    lag(30, 20)
    assert ("consumer_lag_growing", "telemetry") not in active()  # less than a minute of history
    lag(70, 5)
    lag(10, 30)
    assert ("consumer_lag_growing", "telemetry") in active()
    lag(2, 25)  # it fell: caught up a little
    assert ("consumer_lag_growing", "telemetry") not in active()


def test_no_heartbeat_for_the_stale_threshold(settings):
    settings.CONSUMER_HEARTBEAT_STALE_SECONDS = 30
    now = timezone.now()
    beat = ConsumerHeartbeat.objects.create(consumer="telemetry", member="host:1", group_id="g", state="running",
                                            started_at=now - timedelta(minutes=5), beat_at=now - timedelta(seconds=31))
    assert ("consumer_heartbeat_missing", "telemetry") in active()
    beat.beat_at = timezone.now()
    beat.save()
    assert active() == set()
    beat.state, beat.reason = "paused", "50 messages in a row refused"
    beat.save()
    assert ("consumer_failing", "telemetry") in active()


def test_dead_letters_per_minute(settings):
    settings.CONSOLE_ALERT_DEAD_LETTERS_PER_MINUTE = 2
    for _ in range(3):
        dead_letter("alerts-topic", {"id": "ten"}, consumer="orders")
    assert ("dead_letters_rate", "orders") in active()
    QuarantineRecord.objects.update(created_at=timezone.now() - timedelta(minutes=2))
    assert ("dead_letters_rate", "orders") not in active()


def test_a_file_stuck_in_a_state(settings):
    settings.CONSOLE_ALERT_FILE_STUCK_MINUTES = 30
    stuck = IngestedFile.objects.create(path="a.csv", name="a.csv", checksum="0" * 64,
                                        status=IngestedFile.Status.LOADING)
    IngestedFile.objects.filter(pk=stuck.pk).update(updated_at=timezone.now() - timedelta(minutes=31))
    assert ("file_stuck", f"a.csv#{stuck.pk}") in active()
    IngestedFile.objects.filter(pk=stuck.pk).update(status=IngestedFile.Status.LOADED)
    assert active() == set()


def test_a_threshold_of_zero_turns_its_alert_off(settings):
    settings.CONSOLE_ALERT_LAG_MAX = 0
    lag(1, 10**9)
    assert active() == set()


@pytest.mark.services  # /healthz reaches every service
def test_healthz_is_degraded_naming_the_alert_and_metrics_export_it(client, settings):
    settings.CONSOLE_ALERT_LAG_MAX = 100
    settings.METRICS_TOKEN = ""
    lag(1, 500, consumer="orders")
    anonymous = client.get("/healthz")
    assert anonymous.status_code == 200 and anonymous.json() == {"status": "degraded"}
    client.force_login(get_user_model().objects.create_user("alerts-staff", is_staff=True))
    body = client.get("/healthz").json()
    assert body["status"] == "degraded"
    assert body["failing"] == ["alert:consumer_lag_high:orders"]
    assert body["reasons"]["alert:consumer_lag_high:orders"] == "lag 500 > 100"

    text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    assert 'console_alert_active{alert="consumer_lag_high",subject="orders"} 1.0' in text

    lag(0, 10, consumer="orders")  # cleared
    assert client.get("/healthz").json()["status"] == "ok"
    text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    assert "console_alert_active{" not in text
