"""Decoding helpers shared by consumers and REST endpoints: pure, no I/O."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import orjson

from .registry import MessageRejected

# Sane bounds for epoch seconds: 2000-01-01 .. 2100-01-01.
EPOCH_MIN, EPOCH_MAX = 946684800, 4102444800
_MOMENT_MIN, _MOMENT_MAX = datetime.fromtimestamp(EPOCH_MIN, tz=UTC), datetime.fromtimestamp(EPOCH_MAX, tz=UTC)


def parse_timestamp(value: Any) -> datetime:
    """An ISO 8601 string (naive means UTC) or epoch seconds -> aware UTC datetime.

    Raises ValueError with a message fit for an operator.
    """
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)  # the hot path: no padding to strip
        except ValueError:
            try:
                parsed = datetime.fromisoformat(value.strip())
            except ValueError:
                raise ValueError("is not an ISO 8601 timestamp") from None
        if parsed.tzinfo is not UTC:
            parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        if not _MOMENT_MIN <= parsed <= _MOMENT_MAX:
            raise ValueError("must be between 2000-01-01 and 2100-01-01")
        return parsed
    if isinstance(value, bool) or value is None:
        raise ValueError("must be an ISO 8601 string or epoch seconds")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or not EPOCH_MIN <= value <= EPOCH_MAX:
            raise ValueError("epoch seconds must be between 2000-01-01 and 2100-01-01")
        return datetime.fromtimestamp(value, tz=UTC)
    raise ValueError("must be an ISO 8601 string or epoch seconds")


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, the one timestamp format our topics carry."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat()[:-6] + "Z"  # an aware UTC datetime's isoformat ends in +00:00


# Deepest nesting of arrays/objects a payload may have (free-form `details` included).
JSON_MAX_DEPTH = 32
INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1


def _location(path: list[str | int]) -> str | None:
    return ".".join(str(p) for p in path) or None


def json_problems(value: Any, *, max_depth: int = JSON_MAX_DEPTH) -> list[dict[str, Any]]:
    """What PostgreSQL (text and jsonb) or our limits refuse inside a parsed JSON value:
    NUL characters in strings and keys, nesting deeper than `max_depth`. One error per
    place, with its path as the field ("details.tags.0")."""
    problems: list[dict[str, Any]] = []
    stack: list[tuple[Any, list[str | int], int]] = [(value, [], 0)]
    while stack and len(problems) < 20:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                problems.append({"field": _location(path), "rule": "nul",
                                 "message": "must not contain NUL (\\u0000) characters"})
        elif isinstance(item, (dict, list)):
            if depth >= max_depth:
                problems.append({"field": _location(path), "rule": "depth",
                                 "message": f"is nested deeper than {max_depth} levels"})
                continue
            if isinstance(item, dict):
                for key, child in item.items():
                    if "\x00" in key:
                        problems.append({"field": _location(path + [key.replace("\x00", "\\u0000")]),
                                         "rule": "nul", "message": "keys must not contain NUL characters"})
                        continue
                    stack.append((child, path + [key], depth + 1))
            else:
                stack.extend((child, path + [i], depth + 1) for i, child in enumerate(item))
    return problems


def _may_hold_problems(raw: bytes | str, max_depth: int) -> bool:
    """False when the text itself rules out what json_problems looks for, so the walk
    over the parsed value is skipped (the common case, and the hot path of every
    consumer): a NUL inside a JSON string can only be written as the escape \\u0000
    (a raw NUL is not JSON, orjson refuses it), and a value nested deeper than
    `max_depth` needs more than `max_depth` opening brackets. Brackets or escapes
    inside strings only make the answer True, never wrongly False."""
    if isinstance(raw, str):
        return "\\u0000" in raw or raw.count("{") + raw.count("[") > max_depth
    return b"\\u0000" in raw or raw.count(b"{") + raw.count(b"[") > max_depth


class JSONRejected(ValueError):
    """A body that is not acceptable JSON: `reason` for an operator, `errors` per place."""

    def __init__(self, reason: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.errors = errors


def parse_json(raw: bytes | str, *, max_depth: int = JSON_MAX_DEPTH) -> Any:
    """Strict JSON, shared by every consumer and every API body: UTF-8 only; no NaN or
    Infinity tokens; no number beyond a double's range; no lone surrogates; no NUL in
    strings or keys; nesting at most `max_depth`. Raises JSONRejected."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if isinstance(raw, bytes):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as bad:
                raise JSONRejected(f"payload is not UTF-8 (byte {bad.start})",
                                   [{"field": None, "rule": "utf8", "message": str(bad)}]) from None
        message = exc.msg
        if message.startswith("number is infinity"):
            _name_the_huge_number(raw, exc)
        if message == "depth limit exceeded":
            raise JSONRejected(f"payload is nested deeper than {max_depth} levels",
                               [{"field": None, "rule": "depth", "message": f"is nested deeper than {max_depth} levels",
                                 "line": exc.lineno, "column": exc.colno}]) from None
        if message in ("unexpected character, expected a JSON value", "no digit after sign"):
            message += " (NaN and Infinity are not JSON)"
        raise JSONRejected(
            f"payload is not JSON: {message} at line {exc.lineno} column {exc.colno}",
            [{"field": None, "rule": "json", "message": message, "line": exc.lineno, "column": exc.colno}],
        ) from None
    if isinstance(value, (dict, list)) and _may_hold_problems(raw, max_depth):
        problems = json_problems(value, max_depth=max_depth)
        if problems:
            places = ", ".join(sorted({str(p["field"]) for p in problems}))
            raise JSONRejected(f"invalid JSON content at: {places}", problems)
    elif isinstance(value, str) and "\x00" in value:
        raise JSONRejected("invalid JSON content: NUL character",
                           [{"field": None, "rule": "nul", "message": "must not contain NUL characters"}])
    return value


class _TooLarge(str):
    """A number literal beyond a double's range, kept as text to find where it was."""


def _huge_float(text: str) -> Any:
    value = float(text)
    return _TooLarge(text) if math.isinf(value) else value


def _huge_int(text: str) -> Any:
    return _TooLarge(text) if len(text.lstrip("-")) > 308 else int(text)


def _name_the_huge_number(raw: bytes | str, exc: orjson.JSONDecodeError) -> None:
    """orjson says a number overflows; parse again (slowly, only here) to name the field."""
    import json

    try:
        value = json.loads(raw, parse_float=_huge_float, parse_int=_huge_int)
    except (ValueError, RecursionError):
        return
    stack: list[tuple[Any, list[str | int]]] = [(value, [])]
    while stack:
        item, path = stack.pop()
        if isinstance(item, _TooLarge):
            raise JSONRejected(
                f"invalid fields: {_location(path)}",
                [{"field": _location(path), "rule": "range", "message": "is too large to represent (beyond a double)",
                  "line": exc.lineno, "column": exc.colno}],
            ) from None
        if isinstance(item, dict):
            stack.extend((v, path + [k]) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, path + [i]) for i, v in enumerate(item))


def decode_json_object(raw: bytes) -> dict[str, Any]:
    """Parse a JSON object (strictly, `parse_json`), or reject with a precise reason."""
    try:
        value = parse_json(raw)
    except JSONRejected as exc:
        raise MessageRejected(exc.reason, exc.errors) from None
    if not isinstance(value, dict):
        raise MessageRejected(
            f"payload must be a JSON object, got {type(value).__name__}",
            [{"field": None, "rule": "object", "message": "expected a JSON object"}],
        )
    return value


class FieldChecker:
    """Collects every field error of one payload, then raises them together."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.errors: list[dict[str, Any]] = []

    def _fail(self, name: str, rule: str, message: str) -> None:
        self.errors.append({"field": name, "rule": rule, "message": message, "value": repr(self.data.get(name))[:200]})

    def integer(self, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int | None:
        value = self.data.get(name)
        if value is None:
            self._fail(name, "required", "this field is required")
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and (not value.is_integer())
        ):
            self._fail(name, "integer", "must be an integer")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self._fail(name, "integer", "must be an integer")
            return None
        value = int(value)
        # Columns hold 64 bits at most; narrower ones pass their own maximum.
        if not -INT64_MAX - 1 <= value <= INT64_MAX:
            self._fail(name, "range", "is out of range (a 64-bit integer)")
            return None
        if minimum is not None and value < minimum:
            self._fail(name, "min", f"must be >= {minimum}")
        if maximum is not None and value > maximum:
            self._fail(name, "max", f"must be <= {maximum}")
        return value

    def number(self, name: str, *, minimum: float | None = None, maximum: float | None = None,
               exclusive_minimum: bool = False) -> float | None:
        value = self.data.get(name)
        if value is None:
            self._fail(name, "required", "this field is required")
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self._fail(name, "number", "must be a finite number")
            return None
        try:
            value = float(value)  # an integer of 400 digits does not fit a double
        except OverflowError:
            self._fail(name, "range", "is too large to represent (beyond a double)")
            return None
        if not math.isfinite(value):
            self._fail(name, "number", "must be a finite number")
            return None
        if minimum is not None and (value <= minimum if exclusive_minimum else value < minimum):
            self._fail(name, "min", f"must be {'>' if exclusive_minimum else '>='} {minimum:g}")
        if maximum is not None and value > maximum:
            self._fail(name, "max", f"must be <= {maximum:g}")
        return value

    def string(self, name: str, *, max_length: int = 255, required: bool = True) -> str | None:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                self._fail(name, "required", "this field is required")
            return None
        if not isinstance(value, str):
            self._fail(name, "string", "must be a string")
            return None
        if len(value) > max_length:
            self._fail(name, "max_length", f"must be at most {max_length} characters")
        self._text_ok(name, value)
        return value

    def _text_ok(self, name: str, value: str) -> bool:
        """Text PostgreSQL can store: no NUL, no lone surrogate."""
        if "\x00" in value:
            self._fail(name, "nul", "must not contain NUL (\\u0000) characters")
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            self._fail(name, "unicode", "must be valid Unicode (no lone surrogates)")
            return False
        return True

    def identifier(self, name: str, *, max_length: int = 128) -> str | None:
        """An id: a non-empty string (an integer is accepted and turned into one)."""
        value = self.data.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            self._fail(name, "required", "this field is required and must not be empty")
            return None
        if not isinstance(value, str):
            self._fail(name, "string", "must be a string")
            return None
        if len(value) > max_length:
            self._fail(name, "max_length", f"must be at most {max_length} characters")
            return None
        if not self._text_ok(name, value):
            return None
        return value

    def timestamp(self, name: str) -> datetime | None:
        if self.data.get(name) is None:
            self._fail(name, "required", "this field is required")
            return None
        try:
            return parse_timestamp(self.data[name])
        except ValueError as exc:
            self._fail(name, "timestamp", str(exc))
            return None

    def done(self) -> None:
        if self.errors:
            fields = ", ".join(sorted({str(e["field"]) for e in self.errors}))
            raise MessageRejected(f"invalid fields: {fields}", self.errors)
