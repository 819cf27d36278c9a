"""Trace context on every hop: the W3C `traceparent` that travels with each event,
and the spans the platform opens for it.

The context is one string, `00-<trace id>-<parent span id>-<flags>`, carried in
the `traceparent` header of every message the console produces, in a Celery
task's headers, and in a request's. What holds it where:

* the *ambient* context of this thread or coroutine (`current()`): the active
  OpenTelemetry span when spans are exported, else a context of our own set by
  the entry point (a request, a task, a batch, an announcement) with `use()`;
* the producer's front door (producer.py) puts the ambient context on every
  message that carries no headers of its own (`ambient_headers`);
* a consumer's batch is one span (`batch_span`), in the way OpenTelemetry's
  messaging conventions describe batch receive: its own trace, with links to
  the distinct contexts its messages carried, never a span per message. A
  message that came without a context (a client that sends none) takes the
  batch's: that is its first hop, and `forward_headers` passes it on.

Two modes. With `OTEL_EXPORTER_OTLP_ENDPOINT` set, console/tracing.py installs
the OpenTelemetry SDK and calls `install()`: spans are real and exported. Without
it nothing is exported and no span is made, but the contexts still travel and the
rows still store their trace ids (the console's trace page reads those), at the
cost of a random id per batch or request.

Imports: the OpenTelemetry API only (never the SDK), and the platform's headers.
"""

from __future__ import annotations

import re
from random import getrandbits
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

from opentelemetry import trace as otel
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from .headers import TRACEPARENT, Headers

__all__ = [
    "TRACEPARENT", "SpanKind", "ambient_headers", "batch_span", "child", "current", "current_trace_id", "enter", "event_context", "exporting",
    "forward_headers", "install", "leave", "message_traceparent", "redriven", "new_traceparent", "parse", "span", "trace_id_of", "use",
]

# version 00: 2 + 1 + 32 + 1 + 16 + 1 + 2 characters, lowercase hex (W3C Trace Context, level 1).
_FORMAT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16

# How many distinct message contexts one batch span links to (the SDK keeps 128 by default).
BATCH_LINKS = 128

_ambient: ContextVar[str | None] = ContextVar("console_traceparent", default=None)
_tracer: otel.Tracer | None = None


def install(provider: otel.TracerProvider) -> None:
    """Export spans through `provider` (console/tracing.py, when an OTLP endpoint is set)."""
    global _tracer
    _tracer = provider.get_tracer("console")


def exporting() -> bool:
    return _tracer is not None


def parse(value: bytes | str | None) -> tuple[str, str, str] | None:
    """(trace id, parent span id, flags) of a valid `traceparent`, else None.

    Version 00 exactly; a later version is read by its first four fields, as the
    standard asks; the all-zero ids and version ff are invalid."""
    if not value:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        if len(value) > 256:
            return None
        try:
            value = bytes(value).decode("ascii")
        except UnicodeDecodeError:
            return None
    match = _FORMAT.match(value.strip())
    if match is None:
        return None
    version, trace_id, span_id, flags = match.groups()
    if version == "ff" or (version == "00" and len(value.strip()) != 55):
        return None
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return trace_id, span_id, flags


def trace_id_of(value: bytes | str | None) -> str | None:
    parsed = parse(value)
    return parsed[0] if parsed else None


def new_traceparent(trace_id: str | None = None) -> str:
    """A context with a new span id: in `trace_id`, or in a new trace. The ids need to be
    unique, not secret: `random`'s generator, as OpenTelemetry's SDK uses, at a third of
    the cost of os.urandom on the hot path (never all zeros, which the standard forbids)."""
    return f"00-{trace_id or f'{getrandbits(128) or 1:032x}'}-{getrandbits(64) or 1:016x}-01"


def child(traceparent: bytes | str | None) -> str:
    """A context of our own below `traceparent` (same trace, new span id); a new trace when it is invalid."""
    parsed = parse(traceparent)
    return new_traceparent(parsed[0] if parsed else None)


def _format(context: SpanContext) -> str:
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def current() -> str | None:
    """The ambient context: the active span's, else the one an entry point set, else None."""
    context = otel.get_current_span().get_span_context()
    if context.is_valid:
        return _format(context)
    return _ambient.get()


def current_trace_id() -> str | None:
    return trace_id_of(current())


@contextmanager
def use(traceparent: str | None) -> Iterator[str | None]:
    """Make `traceparent` the ambient context for the block."""
    token = _ambient.set(traceparent)
    try:
        yield traceparent
    finally:
        _ambient.reset(token)


def enter(traceparent: str | None) -> Token[str | None]:
    """`use` for an entry point that starts and ends in two callbacks (a Celery task's
    prerun and postrun): the token goes back to `leave`."""
    return _ambient.set(traceparent)


def leave(token: Token[str | None]) -> None:
    _ambient.reset(token)


def ambient_headers() -> Headers | None:
    """The header that carries the ambient context, or None when there is none."""
    context = current()
    return [(TRACEPARENT, context.encode())] if context else None


def message_traceparent(headers: Sequence[tuple[str, Any]] | None) -> bytes | None:
    """The `traceparent` a message carried (raw), or None."""
    if headers:
        for key, value in headers:
            if key == TRACEPARENT:
                return value
    return None


def forward_headers(headers: Sequence[tuple[str, Any]] | None, batch: Headers) -> Headers:
    """The trace header for a message derived from one with `headers`: the context it
    carried when valid, else the batch's (`batch`, built once per batch: a shared list)."""
    raw = message_traceparent(headers)
    if raw is not None and parse(raw) is not None:
        return [(TRACEPARENT, bytes(raw))]
    return batch


def _remote(traceparent: bytes | str | None) -> SpanContext | None:
    parsed = parse(traceparent)
    if parsed is None:
        return None
    trace_id, span_id, flags = parsed
    return SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=TraceFlags(int(flags, 16)))


@contextmanager
def span(name: str, *, parent: bytes | str | None = None, root: bool = False, kind: SpanKind = SpanKind.INTERNAL,
         attributes: dict[str, Any] | None = None, links: Iterable[bytes | str] = ()) -> Iterator[str]:
    """A unit of work below `parent` (a traceparent; the ambient context when None; a new
    trace when neither, or when `root`). Exporting, it is a real span, current for the
    block; otherwise a context of our own, ambient for the block. Yields the block's
    traceparent."""
    parent = None if root else parent if parse(parent) is not None else current()
    if _tracer is None:
        with use(child(parent)) as context:
            yield context  # type: ignore[misc]
        return
    remote = _remote(parent)
    context = otel.set_span_in_context(NonRecordingSpan(remote) if remote else otel.INVALID_SPAN)
    span_links = [Link(c) for c in (_remote(x) for x in links) if c is not None]
    with _tracer.start_as_current_span(name, context=context, kind=kind, attributes=attributes,
                                       links=span_links):
        yield current()  # type: ignore[misc]


def event_context(name: str, *, parent: bytes | str | None = None, links: Iterable[bytes | str] = (),
                  attributes: dict[str, Any] | None = None) -> str:
    """The context of one event the console sends (a file announced, a message re-driven):
    a child of `parent` or else of the ambient context, a new trace without either.
    Exporting, a short span of its own marks it, linked to `links`."""
    with span(name, parent=parent, kind=SpanKind.PRODUCER, attributes=attributes, links=links) as context:
        return context


def redriven(headers: Headers) -> Headers:
    """A re-driven message's headers: its trace goes on below a `redrive` context (linked,
    exporting, to the operator's request), or the request's when it carried none."""
    own = message_traceparent(headers)
    operator = current()
    context = event_context("redrive", parent=own if parse(own) else None,
                            links=[operator] if operator and parse(own) else ())
    return [(k, v) for k, v in headers if k != TRACEPARENT] + [(TRACEPARENT, context.encode())]


@contextmanager
def batch_span(name: str, envelopes: Sequence[Any], *,
               attributes: Callable[[], dict[str, Any]]) -> Iterator[Headers]:
    """A consumer's batch: a new trace, linked (exporting) to the distinct contexts its
    messages carried, up to BATCH_LINKS. Yields the batch's trace header, for the
    messages that came without one (`forward_headers`). `attributes` is called only
    when exporting: without a tracer the batch pays for one random id and nothing else."""
    if _tracer is None:
        context = new_traceparent()
        with use(context):
            yield [(TRACEPARENT, context.encode())]
        return
    # Per message only a header lookup and a dict probe: the contexts are parsed once
    # each, and most batches carry few (the batch that published them upstream).
    distinct: dict[bytes, None] = {}
    carried = 0
    for headers in [e.headers for e in envelopes if e.headers]:
        raw = message_traceparent(headers)
        if raw is not None:
            carried += 1
            if len(distinct) < BATCH_LINKS:
                distinct[bytes(raw)] = None
    seen = [c for c in map(_remote, distinct) if c is not None]
    topics = {e.topic for e in envelopes}
    span_attributes = {**attributes(), "messaging.destination.name": ",".join(sorted(topics)),
                  "messaging.batch.message_count": len(envelopes),
                  "console.batch.messages_with_context": carried, "console.batch.links": len(seen)}
    with _tracer.start_as_current_span(name, context=otel.set_span_in_context(otel.INVALID_SPAN),
                                       kind=SpanKind.CONSUMER, attributes=span_attributes,
                                       links=[Link(c) for c in seen]):
        yield [(TRACEPARENT, current().encode())]  # type: ignore[union-attr]
