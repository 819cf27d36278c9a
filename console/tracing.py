"""Tracing's configuration and its entry points in the web and Celery processes.

* `configure()`, from ConsoleConfig.ready in every process: when
  OTEL_EXPORTER_OTLP_ENDPOINT is set, the OpenTelemetry SDK with an OTLP/HTTP
  exporter (batched, in its own thread) becomes the tracer provider, the
  platform exports through it (streams.kafka.tracing.install), and the
  well-kept instrumentations are on: Django (a span per request, the incoming
  `traceparent` honoured), Celery (a span per task, the context in the task's
  headers) and psycopg2 (a span per query). The consumers' batch loop is the
  platform's own (one span per batch, with links): confluent-kafka's
  instrumentation makes a span per message, which the batch loop must not pay.
  The standard OTEL_* variables (OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER,
  OTEL_EXPORTER_OTLP_HEADERS, ...) apply as the SDK reads them.
* Without the endpoint nothing is exported, and the context still travels:
  `TraceContextMiddleware` makes each request's context (below the caller's
  `traceparent` when it sent one), and the Celery signals carry the context in
  a task's headers and make it the task's.

Part of the configuration kit: imports the platform's tracing, never an app.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from streams.kafka import tracing

logger = logging.getLogger(__name__)

TASK_HEADER = tracing.TRACEPARENT
_configured = False


def service_name() -> str:
    """OTEL_SERVICE_NAME, else `console-<what this process runs>`: `web` (gunicorn, uvicorn,
    runserver), `worker` (Celery), `consumer-<name>`, or the management command's name."""
    if os.environ.get("OTEL_SERVICE_NAME"):
        return os.environ["OTEL_SERVICE_NAME"]
    argv = [os.path.basename(a) for a in sys.argv]
    if "celery" in " ".join(argv[:2]):
        return "console-worker"
    if argv and argv[0] == "manage.py" and len(argv) > 1 and argv[1] != "runserver":
        if argv[1] == "run_consumer" and len(argv) > 2:
            return f"console-consumer-{argv[2]}"
        return f"console-{argv[1]}"
    return "console-web"


def configure() -> bool:
    """Install the SDK and the instrumentations once, when OTEL_EXPORTER_OTLP_ENDPOINT is set."""
    global _configured
    if _configured or not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return _configured
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg2 import Psycopg2Instrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name()}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # endpoint + /v1/traces
    trace.set_tracer_provider(provider)
    tracing.install(provider)
    DjangoInstrumentor().instrument(tracer_provider=provider)
    CeleryInstrumentor().instrument(tracer_provider=provider)
    Psycopg2Instrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
    _configured = True
    logger.info("tracing_exporting endpoint=%s service=%s", os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"],
                service_name())
    return True


def flush(timeout_millis: int = 5000) -> None:
    """Export what is buffered (a process about to stop; the tests)."""
    if _configured:
        from opentelemetry import trace

        trace.get_tracer_provider().force_flush(timeout_millis)  # type: ignore[attr-defined]


class TraceContextMiddleware:
    """Each request's trace context, ambient while Django answers it: a child of the
    caller's `traceparent` when it sent a valid one, a new trace otherwise. When the
    Django instrumentation runs (exporting), its span is the context instead."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[..., Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if iscoroutinefunction(self):
            return self.__acall__(request)
        with tracing.use(tracing.child(request.META.get("HTTP_TRACEPARENT"))):
            return self.get_response(request)

    async def __acall__(self, request: Any) -> Any:
        with tracing.use(tracing.child(request.META.get("HTTP_TRACEPARENT"))):
            return await self.get_response(request)


def inject_task_context(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """`before_task_publish`: a task leaves with the sender's context (the request's, the batch's)."""
    if headers is not None and TASK_HEADER not in headers:
        context = tracing.current()
        if context:
            headers[TASK_HEADER] = context


def enter_task_context(task: Any = None, **_: Any) -> None:
    """`task_prerun`: the task's context is a child of the one it was sent with (a new
    trace without one); the Celery instrumentation's span instead, when exporting."""
    request = getattr(task, "request", None)
    if request is None:
        return
    request.console_trace_token = tracing.enter(tracing.child(getattr(request, TASK_HEADER, None)))


def leave_task_context(task: Any = None, **_: Any) -> None:
    """`task_postrun`: the worker's thread leaves the task's context."""
    token = getattr(getattr(task, "request", None), "console_trace_token", None)
    if token is not None:
        try:
            tracing.leave(token)
        except ValueError:  # set in another context (eager tasks nested in a request)
            pass
