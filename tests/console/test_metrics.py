"""/metrics for Prometheus: what a scrape shows, and who may scrape."""

from __future__ import annotations

import pytest
from django.utils import timezone

from quarantine.models import QuarantineRecord
from streams.models import ConsumerHeartbeat

pytestmark = pytest.mark.django_db


def _beat(**over) -> ConsumerHeartbeat:
    now = timezone.now()
    return ConsumerHeartbeat.objects.create(**{
        "consumer": "telemetry", "member": "host:1", "group_id": "g", "state": "running", "started_at": now,
        "beat_at": now, "messages": 120, "applied": 100, "dead_lettered": 20, "refused": 2, **over})


def test_a_scrape_shows_consumers_files_and_quarantine(client, settings):
    settings.METRICS_TOKEN = ""
    _beat()
    QuarantineRecord.objects.create(source="message", reason="bad", topic="t", partition=0, offset=1,
                                    consumer="telemetry")
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    text = response.content.decode()
    assert 'console_consumer_messages_total{consumer="telemetry",member="host:1"} 120.0' in text
    assert 'console_consumer_dead_lettered_total{consumer="telemetry",member="host:1"} 20.0' in text
    assert 'console_consumer_running{consumer="telemetry"} 1.0' in text
    assert 'console_quarantine_open{source="message"} 1.0' in text
    assert 'console_ingest_files{status="loaded"} 0.0' in text
    assert "console_producer_deliveries_total" in text


def test_a_failing_consumer_is_exported(client, settings):
    settings.METRICS_TOKEN = ""
    _beat(state="paused", reason="50 messages in a row were refused")
    text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    assert 'console_consumer_failing{consumer="telemetry"} 1.0' in text


def test_scrapes_need_the_token_or_an_allowed_address(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403
    settings.METRICS_TOKEN = "s3cret"
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200
