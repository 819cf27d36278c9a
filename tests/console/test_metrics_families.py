"""/metrics: Celery task results by task and state, and requests by route and status."""

from __future__ import annotations

import re

import pytest
from django_celery_results.models import TaskResult

pytestmark = pytest.mark.django_db


def _scrape(client) -> str:
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    return response.content.decode()


def _value(text: str, sample: str) -> float:
    match = re.search(re.escape(sample) + r" ([0-9.e+]+)\n", text)
    return float(match.group(1)) if match else 0.0


def test_task_outcomes_are_counted_from_the_results_table(client, settings):
    settings.METRICS_TOKEN = ""
    for n, status in enumerate(["SUCCESS", "SUCCESS", "FAILURE"]):
        TaskResult.objects.create(task_id=f"m-{n}", task_name="ingest.process_file", status=status)
    text = _scrape(client)
    assert 'console_celery_task_results{state="SUCCESS",task="ingest.process_file"} 2.0' in text
    assert 'console_celery_task_results{state="FAILURE",task="ingest.process_file"} 1.0' in text


def test_requests_are_counted_by_route_and_status(client, settings):
    settings.METRICS_TOKEN = ""
    ok = 'console_http_requests_total{method="GET",route="healthz",status="200"}'
    refused = 'console_http_requests_total{method="GET",route="admin:index",status="302"}'
    unmatched = 'console_http_requests_total{method="GET",route="unmatched",status="404"}'
    before = _scrape(client)
    client.get("/healthz")
    client.get("/healthz")
    client.get("/admin/")  # anonymous: redirected to the login
    client.get("/no-such-page")
    after = _scrape(client)
    assert _value(after, ok) - _value(before, ok) >= 2  # >=: /healthz may be answered for others meanwhile
    assert _value(after, refused) - _value(before, refused) == 1
    assert _value(after, unmatched) - _value(before, unmatched) == 1
    assert 'console_http_requests_total{method="GET",route="metrics",status="200"}' in after
