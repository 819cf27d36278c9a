"""W3C trace context on every hop, without any tracing backend: what the messages,
rows and records carry (streams/kafka/tracing.py, console/tracing.py)."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from ingest.models import IngestedFile
from quarantine.models import QuarantineRecord
from quarantine.services.actions import quarantine_release
from streams.kafka import tracing
from streams.kafka.producer import Outbound, produce_and_wait
from streams.models import ProcessedOrder
from tests.conftest import wait_until
from tests.ingest.conftest import inbox  # noqa: F401 (a fixture)

CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
WIDE_GRACE = {"ORDERS_WINDOW_GRACE_SECONDS": "3600", "ORDERS_IDLE_CLOSE_SECONDS": "3600"}


def header(message, name: str = tracing.TRACEPARENT) -> str | None:
    for key, value in message.headers() or []:
        if key == name:
            return value.decode()
    return None


def order(order_id: str, product_id: str = "prod-1") -> dict:
    return {"order_id": order_id, "user_id": "u-1", "product_id": product_id, "amount": 12.5,
            "timestamp": datetime(2026, 1, 5, 12, 0, 30, tzinfo=UTC).isoformat()}


def test_w3c_traceparent_is_parsed_strictly():
    assert tracing.parse(CALLER) == (CALLER_TRACE, "00f067aa0ba902b7", "01")
    assert tracing.parse(CALLER.encode()) == tracing.parse(CALLER)
    for bad in ("", "00-" + "0" * 32 + "-00f067aa0ba902b7-01", "00-" + CALLER_TRACE + "-" + "0" * 16 + "-01",
                "ff-" + CALLER_TRACE + "-00f067aa0ba902b7-01", CALLER.upper(), CALLER + "-extra", "00-xyz",
                b"\xff" * 55, "0" * 300):
        assert tracing.parse(bad) is None, bad
    # A later version is read by its first fields, as the standard asks.
    assert tracing.parse("01-" + CALLER_TRACE + "-00f067aa0ba902b7-01-later")[0] == CALLER_TRACE
    child = tracing.child(CALLER)
    assert tracing.trace_id_of(child) == CALLER_TRACE and child != CALLER


def test_an_order_keeps_its_context_through_both_hops_and_one_without_gets_its_first_batchs(
        kafka, processes, catalog):
    produce_and_wait([Outbound(kafka.name("orders"), order("traced-1"), key="prod-1",
                               headers=[(tracing.TRACEPARENT, CALLER.encode())]),
                      Outbound(kafka.name("orders"), order("untraced-1"), key="prod-1")])
    processes.consumer("orders")
    processes.consumer("order_windows", **WIDE_GRACE)
    wait_until(lambda: ProcessedOrder.objects.count() == 2, message="both orders stored")

    traced = ProcessedOrder.objects.get(order_id="traced-1")
    assert traced.trace_id.hex == CALLER_TRACE
    untraced = ProcessedOrder.objects.get(order_id="untraced-1")
    assert untraced.trace_id is not None and untraced.trace_id.hex != CALLER_TRACE

    forwarded = {m.key().decode(): header(m) for m in kafka.read("processed_orders", expected=2)}
    assert forwarded["traced-1"] == CALLER  # passed on as it came
    assert tracing.trace_id_of(forwarded["untraced-1"]) == untraced.trace_id.hex  # the first hop's batch
    # The windows it counted in leave with the windows batch's own context.
    metrics = kafka.read("product_metrics", expected=1)
    assert tracing.parse(header(metrics[0])) is not None


def test_a_dead_lettered_order_keeps_its_context_and_a_redrive_continues_it(kafka, processes, catalog):
    produce_and_wait([Outbound(kafka.name("orders"), order("lost-1", product_id="prod-404"), key="prod-404",
                               headers=[(tracing.TRACEPARENT, CALLER.encode())])])
    processes.consumer("orders")
    wait_until(lambda: QuarantineRecord.objects.filter(topic=kafka.name("orders")).exists(),
               message="the unknown product quarantined")
    record = QuarantineRecord.objects.get(topic=kafka.name("orders"))
    assert record.trace_id.hex == CALLER_TRACE
    assert header(kafka.read("orders_dlq", expected=1)[0]) == CALLER

    operator = User.objects.create_superuser("tracer", "t@example.com", "pw")
    quarantine_release(record=record, by=operator)
    replays = [m for m in kafka.read("orders", expected=2) if header(m, "x-replay-count")]
    assert len(replays) == 1
    context = header(replays[0])
    assert tracing.trace_id_of(context) == CALLER_TRACE and context != CALLER  # the same trace, a new hop


@pytest.mark.django_db
def test_a_metric_posted_with_a_traceparent_is_published_below_it(kafka, client_token):
    response = client_token.post("/api/metrics/", {"id": 7, "val": 1.5, "time": 1624378100}, format="json",
                                 HTTP_TRACEPARENT=CALLER)
    assert response.status_code == 202, response.content
    response = client_token.post("/api/metrics/", {"id": 8, "val": 1.5, "time": 1624378100}, format="json")
    assert response.status_code == 202, response.content
    below, fresh = (header(m) for m in sorted(kafka.read("metrics", expected=2), key=lambda m: m.key()))
    assert tracing.trace_id_of(below) == CALLER_TRACE and below != CALLER
    assert tracing.parse(fresh) is not None and tracing.trace_id_of(fresh) != CALLER_TRACE
    # A malformed traceparent is not an error: the request starts a trace of its own.
    response = client_token.post("/api/metrics/", {"id": 9, "val": 1.5, "time": 1624378100}, format="json",
                                 HTTP_TRACEPARENT="00-not-a-context")
    assert response.status_code == 202, response.content


def test_the_asgi_hot_path_publishes_a_metric_below_the_callers_context(kafka, processes, token):
    _proc, port = processes.web()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/metrics/", method="POST",
        data=json.dumps({"id": 11, "val": 2.5, "time": 1624378100}).encode(),
        headers={"Authorization": f"Token {token.key}", "Content-Type": "application/json",
                 "traceparent": CALLER})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202
    context = header(kafka.read("metrics", expected=1)[0])
    assert tracing.trace_id_of(context) == CALLER_TRACE and context != CALLER


def test_an_upload_starts_the_files_trace_and_its_task_continues_it(kafka, processes, inbox, settings):
    uploader = User.objects.create_superuser("uploader", "u@example.com", "pw")
    api = APIClient()
    api.force_authenticate(uploader)
    # Not a sensor file: the task quarantines it, in the trace the upload started.
    response = api.post("/api/files/", {"file": SimpleUploadedFile("bad.csv", b"not,a,sensor,file\n1,2,3,4\n")},
                        format="multipart", HTTP_TRACEPARENT=CALLER)
    assert response.status_code in (201, 202), response.content
    announced = header(kafka.read("file_events", expected=1)[0])
    assert tracing.trace_id_of(announced) == CALLER_TRACE and announced != CALLER

    processes.consumer("files", "--batch-time", "100", **inbox.env())
    processes.celery_worker(**inbox.env())
    wait_until(lambda: IngestedFile.objects.filter(status=IngestedFile.Status.QUARANTINED).exists(), timeout=90,
               message="the file quarantined by its task")
    ingested = IngestedFile.objects.get()
    assert ingested.trace_id.hex == CALLER_TRACE
    assert QuarantineRecord.objects.get(source="file").trace_id.hex == CALLER_TRACE  # recorded by the task
