"""The rules of the sensor CSV contract: the columns, their types and limits
(declared once, in settings.INGEST_CONTRACT), the header check and the row
rules' verdict on one value, with the messages an operator reads.

`check_value` is the authority: the fast paths (arrow.py, columns.py) are
strictly narrower, so they never accept what it would reject.

Called by: the validation paths of this package, ingest.loading (the contract's
metrics), ingest.services (headers of quarantined files).
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from typing import Any, BinaryIO

from django.conf import settings

BOM = b"\xef\xbb\xbf"
# Hard limits of PostgreSQL's timestamptz, so that even a release "as is" loads.
EPOCH_HARD_MIN, EPOCH_HARD_MAX = -210866803200.0, 9224318015999.0
NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
VALUE_PREVIEW = 100


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # "epoch" | "number" | "boolean" | "text"
    min: float | None = None
    max: float | None = None
    required: bool = False
    max_length: int | None = None
    aggregate: bool = False


@dataclass(frozen=True)
class Contract:
    columns: dict[str, Column]
    true_literals: frozenset[str]
    false_literals: frozenset[str]

    @classmethod
    def from_settings(cls) -> "Contract":
        spec = settings.INGEST_CONTRACT
        columns = {
            name: Column(
                name=name,
                type=rules["type"],
                min=rules.get("min"),
                max=rules.get("max"),
                required=rules.get("required", rules["type"] != "text"),
                max_length=rules.get("max_length"),
                aggregate=rules.get("aggregate", False),
            )
            for name, rules in spec["columns"].items()
        }
        return cls(columns, frozenset(spec["true"]), frozenset(spec["false"]))

    @property
    def metrics(self) -> list[str]:
        return [c.name for c in self.columns.values() if c.aggregate]

    @property
    def booleans(self) -> frozenset[str]:
        return self.true_literals | self.false_literals


class FileRejected(Exception):
    """The whole file breaks the contract (empty, bad header, not text)."""

    def __init__(self, reason: str, rule: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.rule = rule
        self.errors = errors or [{"line": 1, "column": None, "value": "", "rule": rule, "message": reason}]


def preview(value: str | bytes) -> str:
    """A value as an error shows it: cut to VALUE_PREVIEW, NUL written as \\0 (jsonb refuses NUL)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    value = value.replace("\x00", "\\0")
    return value if len(value) <= VALUE_PREVIEW else value[:VALUE_PREVIEW] + "…"


def read_header(fh: BinaryIO, contract: Contract, *, max_line: int) -> list[str]:
    """Read and check the header line; return the column names in file order.

    Tolerant of a BOM, CRLF, quotes, surrounding whitespace and letter case;
    strict about missing, unknown and repeated columns."""
    raw = fh.readline(max_line + 1)
    if not raw:
        raise FileRejected("the file is empty", "empty")
    if len(raw) > max_line and not raw.endswith(b"\n"):
        raise FileRejected(f"the header line is longer than {max_line} bytes (is this a CSV file?)", "line_length")
    if raw.startswith(BOM):
        raw = raw[len(BOM):]
    if b"\x00" in raw:
        raise FileRejected("the file is binary (NUL bytes in the header), not CSV text", "binary")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileRejected(f"the header is not UTF-8 text (invalid byte at offset {exc.start})", "encoding") from None
    text = text.rstrip("\r\n")
    if not text.strip():
        raise FileRejected("the header line is empty", "header")
    try:
        names = [f.strip().lower() for f in next(csv.reader([text]))]
    except csv.Error as exc:  # e.g. a lone carriage return: the whole file read as one line
        raise FileRejected(f"the header is not parseable as CSV: {exc}", "header",
                           [{"line": 1, "column": None, "value": preview(text), "rule": "csv",
                             "message": f"not parseable as CSV: {exc}"}]) from None
    expected = list(contract.columns)
    missing = [c for c in expected if c not in names]
    unknown = [n for n in names if n not in contract.columns]
    repeated = sorted({n for n in names if names.count(n) > 1})
    problems, errors = [], []
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)}")
        errors += [{"line": 1, "column": c, "value": "", "rule": "header", "message": "missing column"} for c in missing]
    if unknown:
        problems.append(f"unexpected column(s): {', '.join(preview(u) for u in unknown)}")
        errors += [{"line": 1, "column": preview(u), "value": preview(u), "rule": "header",
                    "message": "unexpected column"} for u in unknown]
    if repeated:
        problems.append(f"repeated column(s): {', '.join(repeated)}")
        errors += [{"line": 1, "column": c, "value": c, "rule": "header", "message": "repeated column"} for c in repeated]
    if problems:
        raise FileRejected("header: " + "; ".join(problems), "header", errors)
    return names


def check_value(column: Column, value: str, *, strict: bool, contract: Contract) -> tuple[str, str] | None:
    """(rule, message) when `value` breaks the column's rules, else None.
    Not strict ("as is"): only what the database needs to store the value."""
    if column.type in ("number", "epoch"):
        if value == "":
            return "required", "a number is required"
        if not NUMBER_RE.fullmatch(value):
            return "number", "not a number"
        number = float(value)
        if not math.isfinite(number):
            return "number", "not a finite number"
        if column.type == "epoch" and not EPOCH_HARD_MIN <= number <= EPOCH_HARD_MAX:
            return "range", "outside any representable time"
        if strict and column.min is not None and number < column.min:
            return "range", f"below the minimum {column.min:g}"
        if strict and column.max is not None and number > column.max:
            return "range", f"above the maximum {column.max:g}"
        return None
    if column.type == "boolean":
        if value not in contract.booleans:
            return "boolean", f"expected one of {', '.join(sorted(contract.booleans))}"
        return None
    if "\x00" in value:
        return "text", "contains a NUL byte"
    if strict and column.required and not value.strip():
        return "required", "must not be empty"
    if strict and column.max_length is not None and len(value) > column.max_length:
        return "max_length", f"longer than {column.max_length} characters"
    return None
