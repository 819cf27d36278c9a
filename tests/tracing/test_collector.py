"""One connected trace per path, in a real OpenTelemetry receiver (Jaeger, the `jaeger`
fixture), from the console's real processes exporting over OTLP/HTTP.

Connected means: the spans of the event's trace, plus the consumers' batch spans that
link to it (a batch is one span in a trace of its own, linked to the contexts of its
messages: Jaeger shows each link as a FOLLOWS_FROM reference), plus what those batches
published in their own traces."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind
from rest_framework.authtoken.models import Token

from ingest.models import IngestedFile
from quarantine.models import QuarantineRecord
from streams.kafka import tracing
from streams.kafka.producer import Outbound, produce_and_wait
from streams.models import ProcessedOrder, Product, ProductWindow
from tests.conftest import wait_until
from tests.ingest.conftest import SAMPLES, inbox  # noqa: F401 (a fixture)
from tests.tracing.conftest import same_id, tag_map

WIDE_GRACE = {"ORDERS_WINDOW_GRACE_SECONDS": "3600", "ORDERS_IDLE_CLOSE_SECONDS": "3600"}


@pytest.fixture
def exporting(jaeger) -> dict[str, str]:
    """The environment that makes a console process export its spans to the fixture's Jaeger."""
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": jaeger.otlp_endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}


class Client:
    """A client of the console that traces what it sends (its own provider, never the global one)."""

    def __init__(self, jaeger) -> None:
        self.provider = TracerProvider(resource=Resource.create({"service.name": f"client-{uuid.uuid4().hex[:6]}"}))
        self.provider.add_span_processor(SimpleSpanProcessor(
            OTLPSpanExporter(endpoint=jaeger.otlp_endpoint + "/v1/traces")))
        self.tracer = self.provider.get_tracer("tests.tracing")

    def send_order(self, kafka, order_id: str, product_id: str) -> tuple[str, int]:
        """An order sent to `orders` under a client span of its own: (its traceparent, its trace id)."""
        traceparent, trace_id = self.send("shop sends an order")
        produce_and_wait([Outbound(kafka.name("orders"), order(order_id, product_id), key=product_id,
                                   headers=[(tracing.TRACEPARENT, traceparent.encode())])])
        return traceparent, trace_id

    def send(self, name: str) -> tuple[str, int]:
        """A finished client span: (its traceparent, its trace id)."""
        with self.tracer.start_as_current_span(name, kind=SpanKind.PRODUCER) as span:
            context = span.get_span_context()
        return f"00-{context.trace_id:032x}-{context.span_id:016x}-01", context.trace_id


def links_to(span: dict[str, Any], trace_id: int | str) -> bool:
    return any(r["refType"] == "FOLLOWS_FROM" and same_id(r["traceID"], trace_id) for r in span["references"])


def linked_batches(jaeger, service: str, operation: str, trace_id: int | str) -> list[dict[str, Any]]:
    """The batch spans of `service` that link to the trace."""
    return [s for t in jaeger.traces(service, operation, limit=50) for s in t["spans"]
            if s["operationName"] == operation and links_to(s, trace_id)]


def wait_linked(jaeger, service: str, operation: str, trace_id: int | str) -> list[dict[str, Any]]:
    return jaeger.wait_for(lambda: linked_batches(jaeger, service, operation, trace_id), timeout=30,
                           message=f"a {operation} span of {service} linked to trace {trace_id:x}"
                           if isinstance(trace_id, int) else f"{operation} linked to {trace_id}")


def header(message, name: str = tracing.TRACEPARENT) -> str | None:
    return next((v.decode() for k, v in message.headers() or [] if k == name), None)


def order(order_id: str, product_id: str) -> dict[str, Any]:
    return {"order_id": order_id, "user_id": "u-1", "product_id": product_id, "amount": 12.5,
            "timestamp": datetime(2026, 1, 5, 12, 0, 30, tzinfo=UTC).isoformat()}


def post(port: int, path: str, body: Any, *, token: str, traceparent: str | None = None) -> int:
    import urllib.request

    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    if traceparent:
        headers["traceparent"] = traceparent
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="POST",
                                     data=json.dumps(body).encode(), headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def test_a_rest_metric_is_one_trace_from_the_client_to_the_consumers_batch(jaeger, exporting, kafka, processes,
                                                                           token):
    client = Client(jaeger)
    traceparent, trace_id = client.send("machine sends a metric")
    _web, port = processes.web(**exporting)
    assert post(port, "/api/metrics/", {"id": 3, "val": 1.5, "time": 1624378100}, token=token.key,
                traceparent=traceparent) == 202
    processes.consumer("telemetry", **exporting)

    spans = jaeger.wait_for_trace(trace_id, spans=2, timeout=30)
    server = next(s for s in spans if s["service"] == "console-web")
    assert server["operationName"] == "POST /api/metrics/"
    assert tag_map(server["tags"])["span.kind"] == "server"
    assert any(r["refType"] == "CHILD_OF" and same_id(r["spanID"], traceparent.split("-")[2])
               for r in server["references"])  # below the client's span
    # The message left with the server span's context: the batch that stored it links to that span.
    batch = wait_linked(jaeger, "console-consumer-telemetry", "process telemetry", trace_id)[0]
    assert any(same_id(r["spanID"], server["spanID"]) for r in batch["references"])
    tags = tag_map(batch["tags"])
    assert tags["messaging.system"] == "kafka" and tags["messaging.destination.name"] == kafka.name("metrics")
    # What the batch did is below it, in its trace: the database statements (psycopg2).
    inside = jaeger.wait_for(lambda: [s for s in jaeger.trace(batch["traceID"]) if s["spanID"] != batch["spanID"]],
                             message="the batch's own spans")
    assert any(s["operationName"] in ("INSERT", "SELECT", "UPDATE", "BEGIN;", "COMMIT;") or "db.system" in
               tag_map(s["tags"]) or "db.system.name" in tag_map(s["tags"]) for s in inside)


def test_an_order_is_one_trace_through_both_hops_into_its_window_and_product_metrics(
        jaeger, exporting, kafka, processes, catalog):
    traceparent, trace_id = Client(jaeger).send_order(kafka, "o-traced", "prod-2")
    processes.consumer("orders", **exporting)
    processes.consumer("order_windows", **exporting, **WIDE_GRACE)
    wait_until(lambda: ProcessedOrder.objects.filter(order_id="o-traced").exists(), message="the order stored")
    assert ProcessedOrder.objects.get(order_id="o-traced").trace_id.int == trace_id

    first = wait_linked(jaeger, "console-consumer-orders", "process orders", trace_id)[0]
    second = wait_linked(jaeger, "console-consumer-order_windows", "process order_windows", trace_id)[0]
    assert not same_id(first["traceID"], second["traceID"])  # each batch is a trace of its own
    # Its window, and the product-metrics message that carries it, come from the second batch.
    window = ProductWindow.objects.get(product_id="prod-2")
    assert window.order_count == 1
    metrics = kafka.read("product_metrics", expected=1)
    assert json.loads(metrics[0].value())["product_id"] == "prod-2"
    published = tracing.parse(header(metrics[0]))
    assert same_id(published[0], second["traceID"]) and same_id(published[1], second["spanID"])
    # The client's span, and nothing else, is in the order's own trace: the hops link to it.
    assert [s["operationName"] for s in jaeger.trace(trace_id)] == ["shop sends an order"]


def test_a_file_is_one_trace_through_the_watcher_the_files_consumer_and_the_task(
        jaeger, exporting, kafka, processes, inbox):  # noqa: F811
    inbox.drop("split_1.csv", SAMPLES / "split_1.csv")
    env = {**inbox.env(), **exporting, "INGEST_SETTLE_SECONDS": "0"}
    watcher = processes.start("watch_inbox", "--once", **env)
    assert watcher.wait(timeout=60) == 0, processes.log(watcher)
    processes.consumer("files", "--batch-time", "100", **env)
    processes.celery_worker(**env)
    wait_until(lambda: IngestedFile.objects.filter(status=IngestedFile.Status.LOADED).exists(), timeout=120,
               message="the file loaded")
    ingested = IngestedFile.objects.get()
    assert ingested.trace_id is not None, "the file was registered without the announcement's trace id"
    trace_id = ingested.trace_id.int

    def chain_of_the_task() -> list[str] | None:
        """The task's span and its parents up the trace, once every one of them is in Jaeger
        (each process exports on its own schedule: a parent may arrive after its child)."""
        spans = jaeger.trace(trace_id)
        by_id = {int(s["spanID"], 16): s for s in spans}
        tasks = [s for s in spans if s["service"] == "console-worker" and "process_file" in s["operationName"]
                 and tag_map(s["tags"]).get("span.kind") == "consumer"]
        if not tasks:
            return None
        chain, span = [], tasks[0]
        while span is not None:
            chain.append((span["service"], span["operationName"]))
            parent = next((r for r in span["references"] if r["refType"] == "CHILD_OF"), None)
            span = by_id.get(int(parent["spanID"], 16)) if parent else None
        return chain if chain[-1][1] == "announce file" else None

    try:
        chain = jaeger.wait_for(chain_of_the_task, timeout=60,
                                message="the task's span below the consumer's, below the watcher's")
    except BaseException:  # pytest.fail: say what did arrive
        print("spans of the file's trace:", [(s["service"], s["operationName"], s["references"])
                                             for s in jaeger.trace(trace_id)])
        raise
    # The task's span is below the consumer's send, below the registration, below the announcement.
    names = [name for _service, name in chain]
    assert "register file" in names and "send ingest.process_file" in names, chain
    assert {"console-watch_inbox", "console-consumer-files", "console-worker"} <= {svc for svc, _ in chain}
    assert linked_batches(jaeger, "console-consumer-files", "process files", trace_id)


def test_a_dead_lettered_order_re_driven_by_an_operator_goes_on_in_its_trace(
        jaeger, exporting, kafka, processes, catalog):
    traceparent, trace_id = Client(jaeger).send_order(kafka, "o-lost", "prod-9")
    orders = processes.consumer("orders", **exporting)
    wait_until(lambda: QuarantineRecord.objects.filter(topic=kafka.name("orders")).exists(),
               message="the order dead-lettered")
    record = QuarantineRecord.objects.get(topic=kafka.name("orders"))
    assert record.trace_id.int == trace_id
    wait_linked(jaeger, "console-consumer-orders", "process orders", trace_id)

    # The operator adds the product and re-drives the order from the quarantine API.
    Product.objects.create(product_id="prod-9", name="Cable", category="Accessories", price=Decimal("9.99"))
    operator = User.objects.create_superuser("operator-t", "o@example.com", "pw")
    _web, port = processes.web(**exporting)
    assert post(port, f"/api/quarantine/records/{record.pk}/release/", {}, token=Token.objects.create(
        user=operator).key) == 200
    forwarded = kafka.read("processed_orders", expected=1)
    assert [m.key() for m in forwarded] == [b"o-lost"]  # applied this time
    assert tracing.trace_id_of(header(forwarded[0])) == f"{trace_id:032x}"
    processes.stop(orders)

    redrive = jaeger.wait_for(lambda: [s for s in jaeger.trace(trace_id) if s["operationName"] == "redrive"],
                              timeout=30, message="the re-drive span in the order's trace")[0]
    assert redrive["service"] == "console-web"
    # The re-drive is linked to the operator's request, a trace of its own.
    request_link = next(r for r in redrive["references"] if r["refType"] == "FOLLOWS_FROM")
    request = jaeger.wait_for(lambda: [s for s in jaeger.trace(request_link["traceID"])
                                       if tag_map(s["tags"]).get("span.kind") == "server"],
                              message="the operator's request span")
    assert "release" in (tag_map(request[0]["tags"]).get("http.route", "") + request[0]["operationName"])
    # The batch that applied the re-driven order links to the re-drive span.
    jaeger.wait_for(lambda: [b for b in linked_batches(jaeger, "console-consumer-orders", "process orders", trace_id)
                             if any(same_id(r["spanID"], redrive["spanID"]) for r in b["references"])],
                    timeout=30, message="the batch of the re-driven order, linked to the re-drive")
