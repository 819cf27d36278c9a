"""The token fast path of the telemetry POSTs.

Machines post events with `Authorization: Token <key>` and a JSON body. For
exactly that request the full DRF request cycle (content negotiation, parser
and renderer selection, template response) costs more CPU than the work
itself, so this plain Django view serves it with the same rules and the same
answers: token checked by CachedTokenAuthentication, the permission by
`may_publish_telemetry` (the DRF view's rule), body parsed as strict JSON,
events validated and published by `telemetry_ingest`. Every other request
(GET, session users, other content types, malformed headers or bodies) goes
to the DRF viewset unchanged, which gives it the browsable API and DRF's own
error answers; so does every POST while a telemetry rate limit is set
(THROTTLE_TELEMETRY_RATE), since DRF counts them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions

from console.throttles import telemetry_rate_limited
from streams.kafka.decoding import JSONRejected, parse_json

from .auth import CachedTokenAuthentication, may_publish_telemetry
from .ingest import TelemetryKind, telemetry_ingest

_auth = CachedTokenAuthentication()


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(json.dumps(body, separators=(",", ":")), status=status,
                            content_type="application/json")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def telemetry_endpoint(kind: TelemetryKind, drf_view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @csrf_exempt
    def view(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method != "POST" or request.content_type != "application/json" or telemetry_rate_limited():
            return drf_view(request, *args, **kwargs)
        parts = request.META.get("HTTP_AUTHORIZATION", "").split()
        if len(parts) != 2 or parts[0].lower() != "token":
            return drf_view(request, *args, **kwargs)
        try:
            user, _token = _auth.authenticate_credentials(parts[1])
        except exceptions.AuthenticationFailed as exc:
            return _json(401, {"detail": str(exc.detail)}, {"WWW-Authenticate": "Token"})
        if not may_publish_telemetry(user):
            return _json(403, {"detail": str(exceptions.PermissionDenied.default_detail)})
        try:
            data = parse_json(request.body)  # the consumers' strict rules
        except JSONRejected:
            return drf_view(request, *args, **kwargs)  # DRF words the parse error
        request.user = user
        status, body, headers = telemetry_ingest(kind=kind, data=data)
        return _json(status, body, headers)

    view.cls = getattr(drf_view, "cls", None)  # drf-spectacular and the router introspect these
    view.initkwargs = getattr(drf_view, "initkwargs", {})
    view.actions = getattr(drf_view, "actions", {})
    return view
