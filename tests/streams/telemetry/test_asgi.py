"""The web process as `make run` starts it: gunicorn with a uvicorn worker serving console.asgi.

The telemetry POSTs of machines are answered by the ASGI hot path
(streams/api/asgi.py); every answer must be the one the DRF view gives for the
same request (checked side by side with Django's test client), and everything
else must reach Django.
"""

from __future__ import annotations

import http.client
import json
import time

import pytest

from streams.models import MachineMetric
from tests.api_fixtures import end_offsets
from tests.streams.telemetry.test_api import METRIC, WORKORDER, values
from tests.conftest import wait_until


def request(port: int, method: str, path: str, body: bytes | str | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def post_json(port: int, path: str, payload, token: str | None, **headers: str):
    body = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
    base = {"Content-Type": "application/json"}
    if token is not None:
        base["Authorization"] = f"Token {token}"
    return request(port, "POST", path, body, {**base, **headers})


BAD_METRICS = [
    {"id": "ten", "val": 1.0, "time": 1624378100},
    {"id": 10, "time": 1624378100},
    {"id": -1, "val": True, "time": 1624378100.5},
    {},
    [METRIC, {"id": 1, "val": "x", "time": 1}],
    [],
    42,
    [METRIC] * 4,  # over TELEMETRY_BATCH_MAX_EVENTS=3
]


def test_hot_path_answers_like_the_drf_view(kafka, processes, client_token, token, settings):
    settings.TELEMETRY_BATCH_MAX_EVENTS = 3
    _web, port = processes.web(TELEMETRY_BATCH_MAX_EVENTS="3")

    status, headers, body = post_json(port, "/api/metrics/", METRIC, token.key)
    assert status == 202, body
    assert json.loads(body) == {"accepted": 1, "topic": kafka.name("metrics")}
    assert headers["content-type"] == "application/json"
    assert values(kafka.read("metrics", expected=1)) == [METRIC]
    status, _, body = post_json(port, "/api/workorders/", [WORKORDER, WORKORDER],
                                token.key, **{"Content-Type": "application/json; charset=utf-8"})
    assert (status, json.loads(body)["accepted"]) == (202, 2)

    for payload in BAD_METRICS:
        status, _, body = post_json(port, "/api/metrics/", payload, token.key)
        expected = client_token.post("/api/metrics/", payload, format="json")
        assert (status, json.loads(body)) == (expected.status_code, expected.json()), payload
        assert status == 400

    # Not JSON, NaN: the body is handed on to DRF, which words the parse error.
    for raw in ("{nope", '{"id": 1, "val": NaN, "time": 1624378100}'):
        status, _, body = post_json(port, "/api/metrics/", raw, token.key)
        expected = client_token.post("/api/metrics/", raw, content_type="application/json")
        assert (status, json.loads(body)) == (400, expected.json())

    # Credentials: none, unknown token, a form instead of JSON.
    assert post_json(port, "/api/metrics/", METRIC, None)[0] == 401
    status, headers, body = post_json(port, "/api/metrics/", METRIC, "0" * 40)
    assert (status, json.loads(body)) == (401, {"detail": "Invalid token."})
    assert headers["www-authenticate"] == "Token"
    status, _, _ = request(port, "POST", "/api/metrics/", "id=1",
                           {"Content-Type": "application/x-www-form-urlencoded",
                            "Authorization": f"Token {token.key}"})
    assert status == 415

    # A host outside ALLOWED_HOSTS is Django's 400; an oversize body is refused before it is read.
    assert post_json(port, "/api/metrics/", METRIC, token.key, Host="evil.example")[0] == 400
    big = json.dumps([METRIC] * 60000)
    status, _, body = post_json(port, "/api/metrics/", big, token.key)
    assert status == 400 and b"larger than" in body

    assert end_offsets(kafka, "metrics") == 1  # only the first, valid event was published

    # A token whose account may not publish: the DRF view's 403, from the same rule.
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    reader = get_user_model().objects.create_user("reader-asgi")
    reader_key = Token.objects.create(user=reader).key
    status, _, body = post_json(port, "/api/metrics/", METRIC, reader_key)
    from rest_framework.test import APIClient

    reader_client = APIClient()
    reader_client.credentials(HTTP_AUTHORIZATION=f"Token {reader_key}")
    expected = reader_client.post("/api/metrics/", METRIC, format="json")
    assert (status, json.loads(body)) == (403, expected.json()) and expected.status_code == 403

    assert end_offsets(kafka, "metrics") == 1  # still only the first event

    # Everything else is Django: the API (reads need a login now), the admin, health.
    assert request(port, "GET", "/api/metrics/")[0] == 401
    assert request(port, "GET", "/admin/login/")[0] == 200
    assert request(port, "GET", "/api/docs/")[0] == 401
    status, _, body = request(port, "GET", "/healthz")
    assert list(json.loads(body)) == ["status"]  # anonymous: no hosts, checks or consumers


def test_hot_path_events_reach_postgres(kafka, processes, token):
    _web, port = processes.web()
    batch = [{"id": 3, "val": i / 2, "time": 1624378100 + i} for i in range(50)]
    assert post_json(port, "/api/metrics/", batch, token.key)[0] == 202
    assert post_json(port, "/api/metrics/", batch, token.key)[0] == 202  # a client retry
    processes.consumer("telemetry")
    wait_until(lambda: MachineMetric.objects.filter(parameter_id=3).count() == 50, timeout=60)
    time.sleep(1)
    assert MachineMetric.objects.filter(parameter_id=3).count() == 50  # idempotent on (id, time)


def test_hot_path_answers_503_when_kafka_is_down(processes, token):
    web, port = processes.web(KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1", KAFKA_PRODUCE_TIMEOUT_SECONDS="1")
    started = time.monotonic()
    status, headers, body = post_json(port, "/api/metrics/", METRIC, token.key)
    assert status == 503
    assert json.loads(body)["detail"].startswith("Kafka is unavailable")
    assert headers["retry-after"] == "5"
    assert time.monotonic() - started < 3.0
    assert "web_producer_warm_up_failed" in processes.log(web)


@pytest.mark.django_db
def test_wsgi_entry_point_still_serves(client_token, kafka):
    """console.wsgi stays usable (WEB_WORKER_CLASS=gthread); the Django test client is WSGI."""
    assert client_token.post("/api/metrics/", METRIC, format="json").status_code == 202
