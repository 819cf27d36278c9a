"""A real OpenTelemetry receiver for the tracing tests: Jaeger, run all-in-one with in-memory storage.

The binary is `cmd/jaeger` of github.com/jaegertracing/jaeger at the Makefile's JAEGER_VERSION,
built once per machine into ~/.cache/console-jaeger/<version>/jaeger by `make tracing-deps`.
It is the OpenTelemetry-collector-based Jaeger; the config below gives it exactly three listeners,
all on 127.0.0.1 (nothing on 0.0.0.0, no OTLP gRPC, no Jaeger/Zipkin receivers, no own metrics,
no traces of its own), and no batch processor, so a span is queryable as soon as it is exported:

    54318  OTLP over HTTP (the receiver: POST /v1/traces)
    56686  the query service's HTTP API (/api/traces, /api/services; a built-from-source binary
           has no UI assets, so its / is a placeholder page)
    56685  the query service's gRPC API (it always listens; the tests do not use it)

A test reads what Jaeger stored through the `jaeger` fixture (a JaegerReceiver), whose helpers
use the HTTP API the Jaeger UI uses, with these shapes (checked against this version):

- trace(trace_id), the id an int or hex -> the trace's spans, each a dict:
  traceID and spanID (lowercase hex, zero-padded to 32 and 16 digits here; same_id() compares ids
  whatever their form), operationName, startTime and duration (microseconds), tags
  ([{"key", "type", "value"}], tag_map() flattens them: the attributes, "span.kind" ("internal",
  "server", "client", "producer", "consumer"), "otel.scope.name" (the tracer's name), and for an error
  status "error": true, "otel.status_code": "ERROR", "otel.status_description"), logs (the span's
  events: {"timestamp", "fields"}, the event's name in the field "event"), processID, warnings
  (e.g. "invalid parent span IDs=...; skipping clock skew adjustment" when the parent span is not in
  the trace) and, added by this fixture, "service" (its process's serviceName; the process's tags
  are the resource's other attributes).
- references: the parent and every span link, as [{"refType", "traceID", "spanID"}] (a root span
  without links has []). The parent comes first, refType "CHILD_OF"; each link follows, refType
  "FOLLOWS_FROM", with the linked span's own trace and span ids (a link is CHILD_OF only if it has
  the attribute opentracing.ref_type="child_of"; a link to the parent itself is folded into the
  parent's entry). A link's attributes are dropped: the v1 API's references have none, so a test
  cannot read them back from here.
- traces(service, operation=None, ...) -> [{"traceID", "spans", "processes", ...}] (in no
  promised order) for traces with a span of `service` (and `operation`) in the lookback window.
- services() -> the service names Jaeger has seen.
- wait_for(predicate, timeout) polls until predicate() is truthy (spans arrive asynchronously);
  wait_for_trace(trace_id, spans) waits until the trace has that many spans and returns them.

Tests using the fixture are marked `services` (below): it needs an external binary, like helm
and promtool, so they stay out of the fast tier. The process is stopped at the end of the session.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, wait_until

HOST = "127.0.0.1"
OTLP_HTTP_PORT = 54318
QUERY_HTTP_PORT = 56686
QUERY_GRPC_PORT = 56685
READY_TIMEOUT = 60.0

# The development config (`make tracing-up`), moved to this fixture's ports.
CONFIG = ((ROOT / "deploy" / "jaeger" / "jaeger.yaml").read_text()
          .replace("127.0.0.1:4318", f"{HOST}:{OTLP_HTTP_PORT}")
          .replace("127.0.0.1:16686", f"{HOST}:{QUERY_HTTP_PORT}")
          .replace("127.0.0.1:16685", f"{HOST}:{QUERY_GRPC_PORT}"))


def jaeger_binary() -> Path:
    version = re.search(r"^JAEGER_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    return Path.home() / ".cache" / "console-jaeger" / version / "jaeger"


def same_id(a: str | int, b: str | int) -> bool:
    """Whether two trace or span ids are equal, whatever their zero padding (hex strings or ints)."""
    return (a if isinstance(a, int) else int(a, 16)) == (b if isinstance(b, int) else int(b, 16))


def tag_map(tags: list[dict[str, Any]]) -> dict[str, Any]:
    """Jaeger's [{"key", "type", "value"}] tags as {key: value}."""
    return {t["key"]: t["value"] for t in tags}


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


class JaegerReceiver:
    """The running Jaeger: where to send OTLP, and its query API (see the module docstring)."""

    otlp_endpoint = f"http://{HOST}:{OTLP_HTTP_PORT}"
    query_url = f"http://{HOST}:{QUERY_HTTP_PORT}"

    def __init__(self, proc: subprocess.Popen, log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, **params: Any) -> tuple[int, Any]:
        """GET a query API path; (status, decoded JSON body)."""
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        url = f"{self.query_url}{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            body = e.read()
            try:
                return e.code, json.loads(body)
            except ValueError:
                return e.code, body.decode(errors="replace")

    def services(self) -> list[str]:
        status, body = self.get("/api/services")
        assert status == 200, body
        return body["data"] or []

    def trace(self, trace_id: str | int) -> list[dict[str, Any]]:
        """The spans of one trace ([] while Jaeger has none), each with "service" added."""
        if isinstance(trace_id, int):
            trace_id = f"{trace_id:032x}"
        status, body = self.get(f"/api/traces/{trace_id}")
        if status == 404:
            return []
        assert status == 200, body
        return [span for t in body["data"] for span in _with_services(t)]

    def traces(self, service: str, operation: str | None = None, *, limit: int = 20,
               lookback: float = 3600.0, tags: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Traces with a span of `service` (and `operation`, and all `tags`) that started in the last
        `lookback` seconds. The API itself ignores `lookback` (the UI's) and reads `start`/`end` in
        microseconds, so both are sent. Each trace's spans get "service" added."""
        now_us = int(time.time() * 1_000_000)
        status, body = self.get(
            "/api/traces", service=service, operation=operation, limit=limit,
            lookback=f"{int(lookback)}s", start=now_us - int(lookback * 1_000_000), end=now_us + 60_000_000,
            tags=json.dumps(tags) if tags else None,
        )
        assert status == 200, body
        for t in body["data"] or []:
            t["spans"] = _with_services(t)
        return body["data"] or []

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.2,
                 message: str = "Jaeger to store the spans") -> Any:
        """Poll predicate() until it is truthy and return its value; fail the test after `timeout`."""
        return wait_until(predicate, timeout=timeout, interval=interval, message=message)

    def wait_for_trace(self, trace_id: str | int, spans: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        """The trace's spans once Jaeger holds at least `spans` of them."""
        def enough() -> list[dict[str, Any]] | None:
            found = self.trace(trace_id)
            return found if len(found) >= spans else None
        return self.wait_for(enough, timeout, message=f"{spans} span(s) of trace {trace_id} in Jaeger")


def _with_services(trace: dict[str, Any]) -> list[dict[str, Any]]:
    processes = trace.get("processes") or {}
    for span in trace["spans"]:
        span["service"] = processes.get(span.get("processID"), {}).get("serviceName")
    return trace["spans"]


def pytest_collection_modifyitems(config, items) -> None:
    # An external binary, like helm and promtool: not in the fast tier (`-m "not services"`).
    for item in items:
        if "jaeger" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.services)


@pytest.fixture(scope="session")
def jaeger(tmp_path_factory) -> Iterator[JaegerReceiver]:
    binary = jaeger_binary()
    if not binary.is_file():
        pytest.fail(f"{binary} is missing: run `make tracing-deps` (it builds Jaeger from its Go module)")
    busy = [p for p in (OTLP_HTTP_PORT, QUERY_HTTP_PORT, QUERY_GRPC_PORT) if _listening(p)]
    if busy:
        pytest.fail(f"127.0.0.1 port(s) {busy} already in use: another Jaeger (or test run) holds them")
    workdir = tmp_path_factory.mktemp("jaeger")
    config = workdir / "config.yaml"
    config.write_text(CONFIG)
    log_path = workdir / "jaeger.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(binary), "--config", str(config)], cwd=workdir,
                                stdout=log, stderr=subprocess.STDOUT)
    receiver = JaegerReceiver(proc, log_path)
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        # The collector logs this line once its extensions (the query API) and receivers all listen.
        while not ("Everything is ready" in receiver.log() and _query_answers(receiver)):
            if proc.poll() is not None:
                pytest.fail(f"jaeger exited with {proc.returncode} before it was ready:\n{receiver.log()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"jaeger was not ready after {READY_TIMEOUT:.0f}s:\n{receiver.log()[-3000:]}")
            time.sleep(0.2)
        yield receiver
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _query_answers(receiver: JaegerReceiver) -> bool:
    try:
        return receiver.get("/api/services")[0] == 200
    except OSError:
        return False
