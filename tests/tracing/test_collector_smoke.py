"""The tracing tests' pipe works end to end: spans exported by the OpenTelemetry SDK over OTLP/HTTP
reach the real Jaeger of the `jaeger` fixture, which stores them and returns them, with the
parent/child reference and a link to another trace, through its query API."""

from __future__ import annotations

import uuid

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind

from tests.tracing.conftest import same_id, tag_map


def test_spans_with_a_parent_and_a_link_reach_jaeger(jaeger):
    service = f"tracing-smoke-{uuid.uuid4().hex[:8]}"
    # A provider of this test's own: the global one stays unset.
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=jaeger.otlp_endpoint + "/v1/traces")))
    tracer = provider.get_tracer("tests.tracing")
    try:
        with tracer.start_as_current_span("upstream") as upstream:
            upstream_ctx = upstream.get_span_context()
        with tracer.start_as_current_span("parent", kind=SpanKind.CONSUMER) as parent:
            parent.set_attribute("order.id", "o-1")
            with tracer.start_as_current_span(
                "child", links=[Link(upstream_ctx, {"link.reason": "batched"})]
            ) as child:
                child_ctx = child.get_span_context()
            parent_ctx = parent.get_span_context()
    finally:
        provider.shutdown()
    assert upstream_ctx.trace_id != parent_ctx.trace_id

    spans = jaeger.wait_for_trace(parent_ctx.trace_id, spans=2)
    assert len(spans) == 2
    by_name = {s["operationName"]: s for s in spans}
    assert set(by_name) == {"parent", "child"}
    parent_span, child_span = by_name["parent"], by_name["child"]
    assert {s["service"] for s in spans} == {service}
    assert same_id(parent_span["traceID"], parent_ctx.trace_id)
    assert same_id(parent_span["spanID"], parent_ctx.span_id)
    assert same_id(child_span["spanID"], child_ctx.span_id)
    assert parent_span["references"] == []
    assert tag_map(parent_span["tags"])["order.id"] == "o-1"
    assert tag_map(parent_span["tags"])["span.kind"] == "consumer"

    refs = {r["refType"]: r for r in child_span["references"]}
    assert len(child_span["references"]) == 2, child_span["references"]
    assert same_id(refs["CHILD_OF"]["spanID"], parent_ctx.span_id)
    assert same_id(refs["CHILD_OF"]["traceID"], parent_ctx.trace_id)
    # The link: a FOLLOWS_FROM reference into the other trace.
    assert same_id(refs["FOLLOWS_FROM"]["traceID"], upstream_ctx.trace_id)
    assert same_id(refs["FOLLOWS_FROM"]["spanID"], upstream_ctx.span_id)

    # The linked trace is stored on its own, and a search by service finds both.
    assert [s["operationName"] for s in jaeger.trace(upstream_ctx.trace_id)] == ["upstream"]
    assert service in jaeger.services()
    found = {int(t["traceID"], 16) for t in jaeger.traces(service)}
    assert found == {parent_ctx.trace_id, upstream_ctx.trace_id}
    # The trace that holds a "child" span (Jaeger returns a trace's spans in no set order).
    [child_trace] = jaeger.traces(service, "child")
    assert {s["operationName"] for s in child_trace["spans"]} == {"parent", "child"}
