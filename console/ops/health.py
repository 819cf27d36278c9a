"""`/healthz`: is every dependency reachable? 200 when all are, 503 otherwise.

Anyone may ask (load balancers, container healthchecks), but only staff get
the details: anonymous and other callers get `{"status": ...}` alone, since
the checks' errors name hosts, ports and consumer internals.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis
from confluent_kafka.admin import AdminClient
from django.conf import settings
from django.db import connection
from django.http import JsonResponse

from streams.kafka.client import client_config, describe
from streams.kafka.heartbeat import member_is_live

logger = logging.getLogger(__name__)


def check_postgres(timeout: float) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = %s", [int(timeout * 1000)])
        cursor.execute("SELECT 1")


def check_redis(timeout: float) -> None:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()


def check_kafka(timeout: float) -> None:
    admin = AdminClient(client_config(**{"socket.connection.setup.timeout.ms": int(timeout * 1000)}))
    metadata = admin.list_topics(timeout=timeout)
    if not metadata.brokers:
        raise RuntimeError("no broker in cluster metadata")


CHECKS: dict[str, Callable[[float], None]] = {
    "postgres": check_postgres,
    "redis": check_redis,
    "kafka": check_kafka,
}


def run_checks() -> dict[str, dict[str, object]]:
    timeout = settings.HEALTHCHECK_TIMEOUT_SECONDS
    results: dict[str, dict[str, object]] = {}
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            check(timeout)
            results[name] = {"status": "up"}
        except Exception as exc:  # any failure means "down", with the reason
            results[name] = {"status": "down", "error": describe(exc, limit=300)}
        results[name]["ms"] = round((time.monotonic() - started) * 1000, 1)
    return results


def consumer_states() -> dict[str, dict[str, object]]:
    """Each registered consumer's health from its processes' heartbeats (empty if PostgreSQL is down)."""
    from streams.kafka.heartbeat import consumer_health
    from streams.kafka.registry import consumers

    try:
        return consumer_health(list(consumers()))
    except Exception as exc:  # PostgreSQL down: its own check says so
        return {"error": {"status": "unknown", "reason": describe(exc, limit=300)}}


def active_alerts(states: dict[str, dict[str, object]]) -> list:
    """The alerts (console/ops/alerts.py) other than a failing consumer's, which /healthz names
    already as `consumer:<name>`; empty when they cannot be read."""
    from .alerts import alerts_active

    try:
        health = states if "error" not in states else None
        return [a for a in alerts_active(health=health)
                if a.name not in ("consumer_failing", "consumer_heartbeat_missing")]
    except Exception as exc:  # PostgreSQL went away between the checks: its check says so
        logger.warning("healthz_alerts_unavailable error=%s", exc)
        return []


def healthz(request) -> JsonResponse:
    """503 when a dependency is down; 200 `degraded` when a consumer is failing
    (waiting, paused, crashed or silent) or an alert is active (`alert:<name>:<subject>`
    in `failing`), with the reasons for staff; 200 `ok` otherwise."""
    results = run_checks()
    failing = [name for name, r in results.items() if r["status"] != "up"]
    postgres_up = results["postgres"]["status"] == "up"
    states = consumer_states() if postgres_up else {}
    failing_consumers = {name: c.get("reason", "") for name, c in states.items() if c["status"] == "failing"}
    alerts = active_alerts(states) if postgres_up else []
    status = "unavailable" if failing else ("degraded" if failing_consumers or alerts else "ok")
    body = {
        "status": status,
        "failing": failing + [f"consumer:{name}" for name in failing_consumers] + [a.key for a in alerts],
        "checks": results,
        "consumers": {name: {k: v for k, v in c.items() if k != "members"}
                      | {"live_members": sum(1 for m in c["members"] if member_is_live(m))}
                      for name, c in states.items()},
    }
    if failing_consumers or alerts:
        body["reasons"] = {**failing_consumers, **{a.key: a.message for a in alerts}}
    user = getattr(request, "user", None)
    if not (user and user.is_active and user.is_staff):
        body = {"status": status}
    return JsonResponse(body, status=503 if failing else 200)
