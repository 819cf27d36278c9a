"""Throttles, the login lockout, body limits and the production profile (docs/SECURITY.md).

The auth matrix (who may call which route) is tests/console/test_auth_matrix.py.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parents[2]
METRIC = {"id": 10, "val": 553.1947969841733, "time": 1624378100}


@pytest.fixture(autouse=True)
def _fresh_counters(settings):
    settings.ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def reader(db):
    user = get_user_model().objects.create_user("throttle-reader", password="right-password-1")
    user.user_permissions.add(Permission.objects.get(codename="view_product"))
    return user


# -------------------------------------------------------------------- throttles


def test_user_rate_is_enforced_per_user(settings, reader):
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "user": "3/min"}
    client = APIClient()
    client.force_authenticate(reader)
    assert [client.get("/api/products/").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert "Retry-After" in client.get("/api/products/")


@pytest.mark.django_db
def test_service_tokens_post_telemetry_in_their_own_scope(settings, kafka):
    """Machines are not slowed by the users' rate; a telemetry rate, once set, counts them
    (the fast path then leaves the POST to DRF, which applies it)."""
    service = get_user_model().objects.create_user("throttle-svc")
    service.groups.add(Group.objects.get(name="telemetry-publishers"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=service).key}")
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "user": "2/min", "telemetry": None}
    assert [client.post("/api/metrics/", METRIC, format="json").status_code for _ in range(4)] == [202] * 4
    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "telemetry": "2/min"}
    assert [client.post("/api/metrics/", METRIC, format="json").status_code for _ in range(3)] == [202, 202, 429]


def test_throttles_let_requests_through_when_the_cache_is_away(settings, reader):
    from django.test import override_settings

    settings.API_THROTTLE_RATES = {**settings.API_THROTTLE_RATES, "user": "1/min"}
    client = APIClient()
    client.force_authenticate(reader)
    away = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0",
                        "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}}}
    with override_settings(CACHES=away):
        assert [client.get("/api/products/").status_code for _ in range(2)] == [200, 200]


# ---------------------------------------------------------------- bounded reads


def test_pages_are_bounded_and_large_tables_never_counted(settings, reader):
    from datetime import UTC, datetime

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from streams.models import Product

    for i in range(3):
        Product.objects.create(product_id=f"bound-{i}", name="n", price=1, currency="BRL",
                               availability_timestamp=datetime(2026, 1, 1, tzinfo=UTC))
    settings.API_MAX_PAGE_SIZE = 2
    client = APIClient()
    client.force_authenticate(reader)
    page = client.get("/api/products/?limit=100000000").json()
    assert len(page["results"]) == 2 and page["count"] == 3 and page["next"]

    reader.user_permissions.add(*Permission.objects.filter(codename__in=[
        "view_processedorder", "view_sensorreading", "view_activityevent", "view_machinemetric",
        "view_workorderreading"]))
    reader = get_user_model().objects.get(pk=reader.pk)
    client.force_authenticate(reader)
    for url in ("/api/processed-orders/", "/api/sensor-readings/", "/api/activity-events/", "/api/metrics/",
                "/api/workorders/"):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url + "?limit=100000000")
        assert response.status_code == 200, url
        assert "count" not in response.json() and {"next", "previous", "results"} <= set(response.json()), url
        assert not any("COUNT(" in q["sql"].upper() for q in queries.captured_queries), url


# ------------------------------------------------------------- revocation bound


@pytest.mark.django_db
def test_a_deactivated_account_is_refused_within_the_token_cache_bound(settings, kafka):
    """No signal reaches the other web processes: the cache entry expires after
    API_TOKEN_CACHE_SECONDS, and the next check against the database refuses."""
    import time

    from console.tokens import CachedTokenAuthentication

    settings.API_TOKEN_CACHE_SECONDS = 0.5
    CachedTokenAuthentication.forget()
    service = get_user_model().objects.create_user("bound-svc")
    service.groups.add(Group.objects.get(name="telemetry-publishers"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=service).key}")
    assert client.post("/api/metrics/", METRIC, format="json").status_code == 202
    # As another process would see it: the row changes, this process's cache is not told.
    get_user_model().objects.filter(pk=service.pk).update(is_active=False)
    time.sleep(0.6)
    assert client.post("/api/metrics/", METRIC, format="json").status_code == 401
    CachedTokenAuthentication.forget()


# ---------------------------------------------------------------------- lockout


@pytest.mark.parametrize("login_url", ["/api/auth/login/", "/admin/login/"])
def test_repeated_failed_logins_lock_the_account_out(client, settings, reader, login_url):
    settings.AXES_FAILURE_LIMIT = 3
    reader.is_staff = True  # the admin's login form only accepts staff
    reader.save()
    for _ in range(2):
        response = client.post(login_url, {"username": "throttle-reader", "password": "wrong"})
        assert response.status_code == 200  # the form again, with its error
    assert client.post(login_url, {"username": "throttle-reader", "password": "wrong"}).status_code == 429
    # Locked out: even the right password is refused now.
    locked = client.post(login_url, {"username": "throttle-reader", "password": "right-password-1"})
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    # Another account from the same address is not affected (username and address together).
    get_user_model().objects.create_user("other-user", password="right-password-2", is_staff=True)
    ok = client.post(login_url, {"username": "other-user", "password": "right-password-2"})
    assert ok.status_code == 302 and client.session["_auth_user_id"]


# ------------------------------------------------------------------ body limits


@pytest.mark.django_db
def test_an_upload_over_the_limit_is_refused_unread_over_wsgi(settings, tmp_path):
    settings.INGEST_MAX_UPLOAD_BYTES = 10_000
    settings.INGEST_INBOX_DIR = tmp_path
    uploader = get_user_model().objects.create_user("uploader-413")
    uploader.user_permissions.add(Permission.objects.get(codename="upload_file"))
    client = APIClient()
    client.force_authenticate(uploader)
    response = client.post("/api/files/", {"file": SimpleUploadedFile("big.csv", b"x" * 50_000)},
                           format="multipart")
    assert response.status_code == 413
    assert "10,000 bytes" in response.json()["detail"]
    assert not any(tmp_path.rglob("*.csv"))


def _asgi_call(app, path: str, chunks: list[bytes], headers: list[tuple[bytes, bytes]]):
    """Run one request through an ASGI app; (status, body, bytes the app took from the client)."""
    taken = 0
    pending = list(chunks)
    sent: list[dict] = []

    async def receive():
        nonlocal taken
        if not pending:
            await asyncio.sleep(3600)  # the client waits for the answer
        chunk = pending.pop(0)
        taken += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": [(b"host", b"testserver"), *headers],
             "client": ("127.0.0.1", 5000), "server": ("testserver", 80)}
    asyncio.run(asyncio.wait_for(app(scope, receive, send), timeout=30))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body, taken


def test_an_upload_over_the_limit_is_refused_while_it_streams_over_asgi(settings):
    """The web process's own stack (console/asgi.py): declared too long, nothing is read;
    streamed without a length, reading stops at the limit."""
    from django.core.asgi import get_asgi_application

    from console.uploads import BodyLimit
    from streams.telemetry.asgi import TelemetryHotPath

    settings.INGEST_MAX_UPLOAD_BYTES = 100_000
    app = BodyLimit(TelemetryHotPath(get_asgi_application()))
    multipart = [(b"content-type", b"multipart/form-data; boundary=xyz")]
    chunks = [b"x" * 65_536] * 80  # 5 MB

    status, body, taken = _asgi_call(app, "/api/files/", chunks,
                                     multipart + [(b"content-length", str(65_536 * 80).encode())])
    assert (status, taken) == (413, 0)
    assert b"100,000 bytes" in body

    status, body, taken = _asgi_call(app, "/api/files/", chunks, multipart)
    assert status == 413
    assert taken <= 100_000 + 65_536  # the limit, and at most the chunk that crossed it

    # Under the limit the request reaches Django (here: no credentials, 401).
    status, _body, taken = _asgi_call(app, "/api/files/", [b"--xyz--\r\n"], multipart)
    assert status == 401


# ------------------------------------------------------------ production profile


def _production_env() -> dict[str, str]:
    """.env.example's variables with its "#prod " lines, and a real secret for the placeholder."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/root"),
           "CONSOLE_ENV_FILE": os.devnull}
    for line in (ROOT / ".env.example").read_text().splitlines():
        line = line.removeprefix("#prod ")
        if line.startswith("#") or "=" not in line or " " in line.split("=", 1)[0]:
            continue
        name, value = line.split("=", 1)
        env[name] = value
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    return env


def test_production_profile_passes_check_deploy():
    env = _production_env()
    assert env["DJANGO_SETTINGS_MODULE"] == "console.settings.production"
    env["DEBUG"] = "true"  # whatever the environment says, production runs without DEBUG
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)" in result.stdout


def test_production_profile_requires_its_hosts():
    env = _production_env()
    del env["ALLOWED_HOSTS"]
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "ALLOWED_HOSTS" in result.stderr


def test_the_asgi_web_process_keeps_no_persistent_connections():
    code = ("import console.asgi; from django.conf import settings; "
            "print(settings.DATABASES['default']['CONN_MAX_AGE'])")
    env = {**os.environ, "DB_CONN_MAX_AGE": "60"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.strip().splitlines()[-1] == "0", result.stderr


# ------------------------------------------------------------- Kafka security


class _Stop(Exception):
    pass


def test_kafka_client_config_reaches_every_client(settings, monkeypatch):
    """SASL/TLS properties in KAFKA_CLIENT_CONFIG reach the producers (services and web),
    the consumers, the admin client and the /healthz check."""
    from console.ops import health
    from streams.kafka import _web_producer, producer, runtime, topics
    from streams.kafka.registry import consumers

    sasl = {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "console",
            "sasl.password": "secret", "ssl.ca.location": "/etc/ssl/certs/kafka-ca.pem"}
    settings.KAFKA_CLIENT_CONFIG = sasl
    seen: dict[str, dict] = {}

    def capture(name):
        def fake(config=None, **kwargs):
            seen[name] = dict(config or kwargs.get("default_config") or {})
            raise _Stop
        return fake

    assert sasl.items() <= producer.producer_config().items()
    assert sasl.items() <= _web_producer._web_config().items()
    monkeypatch.setattr(runtime, "Consumer", capture("consumer"))
    with pytest.raises(_Stop):
        runtime.BatchLoop(consumers()["telemetry"], runtime.RunOptions(batch_size=10, batch_time_ms=100))
    monkeypatch.setattr(topics, "AdminClient", capture("admin"))
    with pytest.raises(_Stop):
        topics.admin_client()
    monkeypatch.setattr(health, "AdminClient", capture("healthz"))
    with pytest.raises(_Stop):
        health.check_kafka(1.0)
    for name in ("consumer", "admin", "healthz"):
        assert sasl.items() <= seen[name].items(), name
