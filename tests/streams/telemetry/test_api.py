"""POST /api/metrics/ and /api/workorders/ against the real broker (and the telemetry consumer)."""

from __future__ import annotations

import json
import time

import pytest

from streams.models import MachineMetric, WorkOrderReading
from tests.api_fixtures import end_offsets
from tests.conftest import wait_until

METRIC = {"id": 10, "val": 553.1947969841733, "time": 1624378100}  # seed 000, unchanged
WORKORDER = {"time": 1625748534, "product": 1, "production": 5470.282493383858}


def values(messages) -> list[dict]:
    return [json.loads(m.value()) for m in messages]


@pytest.mark.django_db
def test_seed_metric_is_published_and_acknowledged(kafka, client_token):
    response = client_token.post("/api/metrics/", METRIC, format="json")
    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": 1, "topic": kafka.name("metrics")}
    messages = kafka.read("metrics", expected=1)
    assert values(messages) == [METRIC]
    assert messages[0].key() == b"10"


@pytest.mark.django_db
def test_seed_workorder_is_published(kafka, client_token):
    response = client_token.post("/api/workorders/", WORKORDER, format="json")
    assert response.status_code == 202, response.content
    assert values(kafka.read("workorders", expected=1)) == [WORKORDER]


@pytest.mark.django_db
def test_batch_publishes_every_event(kafka, client_token):
    batch = [{"id": i % 20, "val": i / 4, "time": 1624378100 + i} for i in range(500)]
    response = client_token.post("/api/metrics/", batch, format="json")
    assert response.status_code == 202
    assert response.json()["accepted"] == 500
    assert sorted(values(kafka.read("metrics", expected=500)), key=lambda e: e["time"]) == batch


@pytest.mark.django_db
@pytest.mark.parametrize("payload, fields", [
    ({"id": "ten", "val": 1.0, "time": 1624378100}, {"id"}),
    ({"id": 10, "time": 1624378100}, {"val"}),
    ({"id": 10, "val": 1.0, "time": 99}, {"time"}),
    ({"id": -1, "val": True, "time": 1624378100.5}, {"id", "val", "time"}),
    ({}, {"id", "val", "time"}),
])
def test_invalid_metric_gets_field_errors(kafka, client_token, payload, fields):
    response = client_token.post("/api/metrics/", payload, format="json")
    assert response.status_code == 400
    assert set(response.json()) == fields
    assert end_offsets(kafka, "metrics") == 0


@pytest.mark.django_db
@pytest.mark.parametrize("payload, field", [
    ({"time": 1625748534, "product": 1, "production": -5}, "production"),
    ({"time": 1625748534, "product": "one", "production": 5}, "product"),
    ({"time": "yesterday", "product": 1, "production": 5}, "time"),
])
def test_invalid_workorder_gets_field_errors(kafka, client_token, payload, field):
    response = client_token.post("/api/workorders/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.django_db
def test_a_bad_event_rejects_the_whole_batch(kafka, client_token):
    batch = [METRIC, {"id": 1, "val": "high", "time": 1624378100}, "not an object"]
    response = client_token.post("/api/metrics/", batch, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "2 of 3 events are invalid; none was published"
    assert body["errors"] == {"1": {"val": ["must be a finite number"]},
                              "2": {"non_field_errors": ["expected a JSON object"]}}
    assert end_offsets(kafka, "metrics") == 0


@pytest.mark.django_db
def test_batch_size_limit_and_malformed_bodies(kafka, client_token, settings):
    settings.TELEMETRY_BATCH_MAX_EVENTS = 3
    too_many = client_token.post("/api/metrics/", [METRIC] * 4, format="json")
    assert too_many.status_code == 400
    assert too_many.json() == {"non_field_errors": ["at most 3 events per request, got 4"]}
    assert client_token.post("/api/metrics/", [], format="json").status_code == 400
    assert client_token.post("/api/metrics/", 42, format="json").status_code == 400
    not_json = client_token.post("/api/metrics/", "{nope", content_type="application/json")
    assert not_json.status_code == 400 and "JSON parse error" in not_json.json()["detail"]
    nan = client_token.post("/api/metrics/", '{"id": 1, "val": NaN, "time": 1624378100}',
                            content_type="application/json")
    assert nan.status_code == 400
    form = client_token.post("/api/metrics/", {"id": "1"})  # multipart is not accepted
    assert form.status_code == 415
    assert end_offsets(kafka, "metrics") == 0


@pytest.mark.django_db
@pytest.mark.parametrize("path, body", [("/api/metrics/", METRIC), ("/api/workorders/", WORKORDER)])
def test_unauthenticated_or_bad_token_writes_are_refused(kafka, anonymous, path, body):
    assert anonymous.post(path, body, format="json").status_code == 401
    anonymous.credentials(HTTP_AUTHORIZATION="Token 0000000000000000000000000000000000000000")
    assert anonymous.post(path, body, format="json").status_code == 401
    assert end_offsets(kafka, path.strip("/").split("/")[1]) == 0


@pytest.mark.django_db
def test_session_login_can_post_with_csrf(kafka, service_user):
    from rest_framework.test import APIClient

    from django.contrib.auth.models import Permission

    # The browsable API page (a read: the view permission) hands out the CSRF cookie.
    service_user.user_permissions.add(Permission.objects.get(codename="view_machinemetric"))
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(service_user)
    assert browser.post("/api/metrics/", METRIC, format="json").status_code == 403  # no CSRF token
    browser.get("/api/metrics/", HTTP_ACCEPT="text/html")  # the browsable API page sets the cookie
    csrf = browser.cookies["csrftoken"].value
    assert browser.post("/api/metrics/", METRIC, format="json", HTTP_X_CSRFTOKEN=csrf).status_code == 202


@pytest.mark.django_db
@pytest.mark.parametrize("path, body", [("/api/metrics/", METRIC), ("/api/workorders/", WORKORDER)])
def test_publishing_needs_the_publish_permission(kafka, reader, client_reader, path, body):
    """A token or a session without streams.publish_telemetry is refused, on the fast path and in DRF."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    token_client = APIClient()
    token_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=reader).key}")
    refused = token_client.post(path, body, format="json")  # the WSGI fast path
    assert refused.status_code == 403 and refused.json() == {
        "detail": "You do not have permission to perform this action."}
    assert client_reader.post(path, body, format="json").status_code == 403  # DRF (a session)
    assert end_offsets(kafka, path.strip("/").split("/")[1]) == 0


@pytest.mark.django_db
def test_deleted_token_stops_working(kafka, client_token, token):
    assert client_token.post("/api/metrics/", METRIC, format="json").status_code == 202
    token.delete()
    assert client_token.post("/api/metrics/", METRIC, format="json").status_code == 401


@pytest.mark.django_db
def test_kafka_down_answers_503_within_the_deadline(client_token, kafka_down):
    started = time.monotonic()
    response = client_token.post("/api/metrics/", METRIC, format="json")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["detail"].startswith("Kafka is unavailable")
    assert "127.0.0.1" not in response.content.decode()  # the broker's address stays in the log
    assert response["Retry-After"] == "5"
    assert elapsed < 3.0
    batch = client_token.post("/api/workorders/", [WORKORDER] * 10, format="json")
    assert batch.status_code == 503


def test_posted_events_reach_postgres_through_the_consumer(kafka, processes, client_token, client_reader,
                                                           fresh_producer):
    assert client_token.post("/api/metrics/", METRIC, format="json").status_code == 202
    assert client_token.post("/api/workorders/", [WORKORDER], format="json").status_code == 202
    processes.consumer("telemetry")
    wait_until(lambda: MachineMetric.objects.exists() and WorkOrderReading.objects.exists(),
               message="the posted metric and work order in PostgreSQL")
    metric = MachineMetric.objects.get()
    assert (metric.parameter_id, metric.value, metric.time) == (10, METRIC["val"], METRIC["time"])
    assert WorkOrderReading.objects.get().production == WORKORDER["production"]
    listing = client_reader.get("/api/metrics/?parameter_id=10").json()
    # Cursor pages (the table grows with every machine): no count, a `next` link instead.
    assert "count" not in listing and listing["next"] is None
    assert [r["value"] for r in listing["results"]] == [METRIC["val"]]
