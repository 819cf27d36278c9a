"""The ASGI hot path of the telemetry POSTs.

A machine posting one event with `Authorization: Token <key>` and a JSON body
is the console's busiest request. Under ASGI it is answered here, before
Django's request cycle: the token comes from the per-process cache
(CachedTokenAuthentication; a miss is checked against the database in a
thread), the body is parsed as strict JSON, the events are validated by the
consumer's own rules and published, and the coroutine awaits Kafka's
acknowledgement while the event loop serves other requests. The rules and
the answers are those of the DRF view (`telemetry_messages`, publish.py),
and so is the permission (`may_publish_telemetry`, from the user and
permissions the token cache holds). Each request is a span (streams/kafka/tracing.py),
below the caller's `traceparent`. Mounted by console/asgi.py.

Everything else goes to Django unchanged, and so does any request this path
would word differently from DRF: another method or content type, a missing
or malformed Authorization header, an unknown host, a body that is not JSON
(its bytes are replayed to Django, so DRF reports the parse error), and every
telemetry POST while a telemetry rate limit is set (DRF counts them).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from confluent_kafka import KafkaException
from django.conf import settings
from django.db import close_old_connections
from django.http.request import split_domain_port, validate_host
from django.urls import reverse
from rest_framework import exceptions

from console.throttles import telemetry_rate_limited
from console.tokens import CachedTokenAuthentication
from streams.kafka import producer, tracing
from streams.kafka.decoding import JSONRejected, parse_json

from .publish import METRICS, WORKORDERS, TelemetryKind, may_publish_telemetry, telemetry_ingest_async

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_auth = CachedTokenAuthentication()


def _check_token(key: str):
    """The database side of a token check (a cache miss), in a worker thread."""
    close_old_connections()
    try:
        return _auth.authenticate_credentials(key)
    finally:
        close_old_connections()


async def _answer(send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    content = orjson.dumps(body)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode()),
           (b"x-content-type-options", b"nosniff")]
    raw += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": content})


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the already-read body to the next app, then the real channel."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


@lru_cache(maxsize=256)
def _host_allowed(host: bytes, allowed: tuple[str, ...], debug: bool) -> bool:
    """Django's host check, once per Host header and setting: a client sends the same one each time."""
    domain, _port = split_domain_port(host.decode("latin-1"))
    if debug and not allowed:
        allowed = (".localhost", "127.0.0.1", "[::1]")
    return bool(domain) and validate_host(domain, allowed)


class TelemetryHotPath:
    """ASGI middleware: serves token-authenticated JSON POSTs to /api/metrics/ and /api/workorders/."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.routes: dict[str, TelemetryKind] = {
            reverse("metric-list"): METRICS,
            reverse("workorder-list"): WORKORDERS,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        kind = self.routes.get(scope.get("path", "")) if scope["type"] == "http" else None
        if kind is None or scope["method"] != "POST" or telemetry_rate_limited():
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        key = self._token(headers)
        if key is None or not self._host_allowed(headers):
            return await self.app(scope, receive, send)
        body = await self._body(headers, receive)
        if body is None:
            return await _answer(send, 400, {"detail": "the request body is larger than "
                                             f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes"})
        try:
            data = parse_json(body)  # the consumers' strict rules
        except JSONRejected:
            return await self.app(scope, _replay(body, receive), send)  # DRF words the parse error
        identity = CachedTokenAuthentication.cached(key)
        if identity is None:
            try:
                identity = await sync_to_async(_check_token, thread_sensitive=False)(key)
            except exceptions.AuthenticationFailed as exc:
                return await _answer(send, 401, {"detail": str(exc.detail)}, {"WWW-Authenticate": "Token"})
        if not may_publish_telemetry(identity[0]):  # in memory: the cache entry holds the permissions
            return await _answer(send, 403, {"detail": str(exceptions.PermissionDenied.default_detail)})
        # The request's trace context, below the caller's (the DRF path's is TraceContextMiddleware's).
        with tracing.span(f"POST {scope['path']}", parent=headers.get(b"traceparent"), kind=tracing.SpanKind.SERVER,
                          attributes={"http.request.method": "POST", "url.path": scope["path"]}):
            status, answer, answer_headers = await telemetry_ingest_async(kind=kind, data=data)
        await _answer(send, status, answer, answer_headers)

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        """Connect the web producer when the worker starts; deliver what it holds when it stops."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await sync_to_async(producer.web_producer_warm_up, thread_sensitive=False)(
                        settings.KAFKA_PRODUCE_TIMEOUT_SECONDS)
                except KafkaException as exc:  # not fatal: the first request connects, or answers 503
                    logger.warning("web_producer_warm_up_failed error=%s", exc.args[0])
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                left = await sync_to_async(producer.web_producer_shut_down, thread_sensitive=False)()
                if left:
                    logger.warning("web_producer_undelivered_at_shutdown messages=%s", left)
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    def _token(headers: dict[bytes, bytes]) -> str | None:
        content_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        if content_type != b"application/json":
            return None
        parts = headers.get(b"authorization", b"").split()
        if len(parts) != 2 or parts[0].lower() != b"token":
            return None
        try:
            return parts[1].decode("ascii")
        except UnicodeDecodeError:
            return None

    @staticmethod
    def _host_allowed(headers: dict[bytes, bytes]) -> bool:
        return _host_allowed(headers.get(b"host", b""), tuple(settings.ALLOWED_HOSTS), settings.DEBUG)

    @staticmethod
    async def _body(headers: dict[bytes, bytes], receive: Receive) -> bytes | None:
        """The whole body, or None past DATA_UPLOAD_MAX_MEMORY_SIZE."""
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        declared = headers.get(b"content-length")
        if limit is not None and declared is not None and declared.isdigit() and int(declared) > limit:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if limit is not None and size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)
