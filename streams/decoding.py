"""Decoding helpers shared by consumers and REST endpoints: pure, no I/O."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from .kafka.registry import MessageRejected

# Sane bounds for epoch seconds: 2000-01-01 .. 2100-01-01.
EPOCH_MIN, EPOCH_MAX = 946684800, 4102444800


def parse_timestamp(value: Any) -> datetime:
    """An ISO 8601 string (naive means UTC) or epoch seconds -> aware UTC datetime.

    Raises ValueError with a message fit for an operator.
    """
    if isinstance(value, bool) or value is None:
        raise ValueError("must be an ISO 8601 string or epoch seconds")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or not EPOCH_MIN <= value <= EPOCH_MAX:
            raise ValueError("epoch seconds must be between 2000-01-01 and 2100-01-01")
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("is not an ISO 8601 timestamp") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        parsed = parsed.astimezone(UTC)
        if not EPOCH_MIN <= parsed.timestamp() <= EPOCH_MAX:
            raise ValueError("must be between 2000-01-01 and 2100-01-01")
        return parsed
    raise ValueError("must be an ISO 8601 string or epoch seconds")


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, the one timestamp format our topics carry."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def decode_json_object(raw: bytes) -> dict[str, Any]:
    """Parse a JSON object, or reject with a precise reason."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MessageRejected(
            f"payload is not UTF-8 (byte {exc.start})",
            [{"field": None, "rule": "utf8", "message": str(exc)}],
        ) from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MessageRejected(
            f"payload is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            [{"field": None, "rule": "json", "message": exc.msg, "line": exc.lineno, "column": exc.colno}],
        ) from None
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
        value = int(value)
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
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self._fail(name, "number", "must be a finite number")
            return None
        value = float(value)
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
        return value

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
