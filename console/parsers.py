"""The API's JSON parser: the consumers' strict rules (streams.kafka.decoding.parse_json) for every body.

DRF's stock parser takes NaN and Infinity, numbers beyond a double, any nesting
(a deep enough array is a RecursionError, so an HTTP 500) and NUL characters,
which PostgreSQL then refuses. This one answers 400 to all of them: a syntax
error as `detail`, content problems as field errors keyed by their path.
"""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from streams.kafka.decoding import JSONRejected, parse_json


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        if not raw:
            raise ParseError("JSON parse error - the body is empty")
        try:
            return parse_json(raw)
        except JSONRejected as exc:
            fielded = [e for e in exc.errors if e.get("field")]
            if fielded:
                errors: dict[str, list[str]] = {}
                for error in fielded:
                    errors.setdefault(error["field"], []).append(error["message"])
                raise ParseError(errors) from None
            raise ParseError(f"JSON parse error - {exc.reason}") from None
