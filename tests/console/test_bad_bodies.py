"""Bad request bodies get 400 with field errors, never 500: the DRF views and the ASGI hot path.

The same bodies that stopped consumers before (integers beyond their column,
NUL characters, numbers beyond a double, NaN, deep nesting) are refused at
the edge, by the rules the consumers share (streams.kafka.decoding).
"""

from __future__ import annotations

import json

import pytest

from tests.streams.telemetry.test_asgi import post_json

T = 1700000001
DEEP = "[" * 5000 + "]" * 5000

# (path, body, the field (or word) the answer must name)
BAD = [
    ("/api/metrics/", {"id": 2147483648, "val": 1.0, "time": T}, "id"),
    ("/api/metrics/", '{"id": 1, "val": ' + "9" * 400 + ', "time": 1700000001}', "val"),
    ("/api/metrics/", '{"id": 1, "val": NaN, "time": 1700000001}', "NaN"),
    ("/api/metrics/", '{"id": 1, "val": 1e400, "time": 1700000001}', "val"),
    ("/api/metrics/", DEEP, "nested"),
    ("/api/metrics/", '{"id": 1, "val": 1.0, "time": 1700000001, "note": "a\\u0000b"}', "note"),
    ("/api/metrics/", [{"id": 1, "val": 1.0, "time": T}, {"id": 2**40, "val": 1.0, "time": T}], "id"),
    ("/api/workorders/", {"time": T, "product": 3_000_000_000, "production": 1.0}, "product"),
    ("/api/workorders/", '{"time": 1700000001, "product": 1, "production": -Infinity}', "NaN"),
    ("/api/products/register/", {"productId": "1", "productName": "a\u0000b", "price": 1.0, "currency": "BRL",
                                 "stockQuantity": 1}, "productName"),
    ("/api/products/register/", {"productId": 10**80, "productName": "n", "price": 1.0, "currency": "BRL",
                                 "stockQuantity": 1}, "productId"),
    ("/api/products/register/", {"productId": "1", "productName": "n", "price": 1.0, "currency": "BRL",
                                 "stockQuantity": 2**40}, "stockQuantity"),
    ("/api/products/register/", DEEP, "nested"),
    ("/api/reports/", '{"time_from": ' + "9" * 400 + "}", "time_from"),
    ("/api/reports/", DEEP, "nested"),
]


def _may_request_reports(token) -> None:
    """The bodies of /api/reports/ are checked past its permission, which a service token lacks."""
    from django.contrib.auth.models import Permission

    token.user.user_permissions.add(Permission.objects.get(codename="add_correlationreport"))


def _encode(body) -> str:
    return body if isinstance(body, str) else json.dumps(body)


@pytest.mark.parametrize("path,body,word", BAD, ids=[f"{p}:{i}" for i, (p, _b, _w) in enumerate(BAD)])
def test_drf_answers_400_with_the_field(client_token, token, path, body, word):
    _may_request_reports(token)
    response = client_token.post(path, data=_encode(body), content_type="application/json")
    assert response.status_code == 400, response.content[:500]
    assert word.lower() in response.content.decode().lower(), response.content[:500]


def test_the_asgi_web_process_answers_400_to_every_bad_body(kafka, processes, token):
    _may_request_reports(token)
    _web, port = processes.web()
    for path, body, word in BAD:
        status, _headers, answer = post_json(port, path, _encode(body), token.key)
        assert status == 400, (path, answer[:300])
        assert word.lower() in answer.decode().lower(), (path, answer[:300])
    # A body that is not even UTF-8, and one that is empty.
    for raw in (b"\xff\xfe\x00", b""):
        status, _headers, answer = post_json(port, "/api/metrics/", raw, token.key)
        assert status == 400, answer[:300]
