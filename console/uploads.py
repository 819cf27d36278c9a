"""Request bodies are bounded while they stream in, not after.

Two guards, one limit (settings.INGEST_MAX_UPLOAD_BYTES, the largest request
body the console accepts: an upload of INGEST_MAX_FILE_BYTES plus the
multipart envelope):

* `BodyLimit`, ASGI middleware around the whole web process: Django's ASGI
  handler reads a body to its end before any view runs, so the limit has to
  act before it. A declared Content-Length over the limit is answered 413
  without reading a byte; an undeclared (chunked) body is counted as it
  arrives and cut off at the limit with 413.
* `MaxSizeUploadHandler`, first of Django's upload handlers, for WSGI (where
  the body is read lazily, while the multipart parser walks it) and as a
  second check under ASGI: it refuses a declared length over the limit before
  parsing and stops the parse once the files' bytes pass it; DRF views answer
  the exception 413 themselves.
* `UploadLimitMiddleware`, early in Django's middleware: a declared
  Content-Length over the limit is answered 413 before anything (the CSRF
  check, a form) reads the body; under WSGI Django reads no more than the
  declared length, so this bounds every body there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, JsonResponse
from rest_framework import status
from rest_framework.exceptions import APIException

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def upload_limit() -> int:
    return settings.INGEST_MAX_UPLOAD_BYTES


def too_large_detail() -> str:
    return f"the request body is larger than the limit of {upload_limit():,} bytes"


class UploadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"

    def __init__(self) -> None:
        super().__init__(too_large_detail())


class MaxSizeUploadHandler(FileUploadHandler):
    """Counts the bytes of the uploaded files and stops past the limit; passes them on otherwise."""

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.received = 0

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length is not None and content_length > upload_limit():
            raise UploadTooLarge()  # before the parser reads any of the body
        return None

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > upload_limit():
            raise UploadTooLarge()
        return raw_data

    def file_complete(self, file_size: int):
        return None  # the next handler (memory or temporary file) makes the file


class UploadLimitMiddleware:
    """Django middleware: 413 for a declared body over the limit, unread; and for
    UploadTooLarge raised in a plain Django view (the admin)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        declared = request.META.get("CONTENT_LENGTH") or ""
        if declared.isdigit() and int(declared) > upload_limit():
            return JsonResponse({"detail": too_large_detail()}, status=413)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        if isinstance(exception, UploadTooLarge):
            return JsonResponse({"detail": str(exception.detail)}, status=413)
        return None


class BodyLimit:
    """ASGI middleware: 413 for a body over the limit, having read at most the limit of it."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = upload_limit()
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await _too_large(send)
        received = 0
        cut_off = False
        started = False

        async def counted_receive() -> dict[str, Any]:
            nonlocal received, cut_off
            if cut_off:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Tell the app the client is gone (Django drops the request
                    # without answering), and answer 413 here instead.
                    cut_off = True
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message: dict[str, Any]) -> None:
            nonlocal started
            if cut_off and not started:
                return  # the app must not answer a request it never got whole
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counted_receive, tracked_send)
        if cut_off and not started:
            await _too_large(send)


async def _too_large(send: Send) -> None:
    body = orjson.dumps({"detail": too_large_detail()})
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
