"""What the trace page searches for: one text and a kind, read into a Query or refused with
a plain reason (QueryError), never an exception the page would show as a 500.

Kinds: a trace id (32 hex digits, a UUID or a whole `traceparent`), an order id, a telemetry
id and time (`7 1767225600`, `7 2026-01-01T00:00:00`), a file name, a product id, or `auto`
(console/ops/trace.py's `resolve` decides what it stands for).

Imports: the platform's tracing (to read a traceparent) and Django's date parsing.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC

from django.utils.dateparse import parse_datetime

from streams.kafka import tracing

KINDS = {"auto": "Auto", "trace": "Trace id", "order": "Order id", "telemetry": "Telemetry id + time",
         "file": "File name", "product": "Product id"}
MAX_QUERY = 255
LATEST_EPOCH = 32503680000  # 3000-01-01: a reading's time is before it (and datetimes stay in range)

_HEX32 = re.compile(r"[0-9a-f]{32}")
_TELEMETRY = re.compile(r"(\d{1,10})\s*[@ ,;]\s*(\S+)")


class QueryError(ValueError):
    """A query the page cannot search for, said plainly."""


@dataclass(frozen=True)
class Query:
    kind: str
    text: str
    trace_id: str = ""  # set when the text is a trace id (any kind)
    telemetry: tuple[int, int] | None = None  # (id, epoch seconds) when it reads as one


def trace_id_in(value: str) -> str:
    """The trace id in 32 hex digits, a UUID or a traceparent; "" when it holds none."""
    value = value.strip().lower()
    parsed = tracing.trace_id_of(value) if value.count("-") == 3 else None
    if parsed:
        return parsed
    try:
        candidate = uuid.UUID(value).hex if len(value) == 36 else value
    except ValueError:
        return ""
    return candidate if _HEX32.fullmatch(candidate) and candidate != "0" * 32 else ""


def _telemetry(value: str) -> tuple[int, int] | None:
    match = _TELEMETRY.fullmatch(value.strip())
    if match is None:
        return None
    ident, moment = match.groups()
    if moment.isdigit():
        epoch = int(moment)
    else:
        try:
            parsed = parse_datetime(moment)
        except ValueError:  # well formed, not a date (2026-13-45T00:00:00)
            return None
        if parsed is None:
            return None
        epoch = int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp())
    return (int(ident), epoch) if int(ident) < 2**31 and 0 <= epoch < LATEST_EPOCH else None


def parse_query(text: str, kind: str) -> Query | None:
    """The search the page runs, None for an empty box; QueryError when it cannot be one."""
    text = (text or "").strip()
    kind = kind or "auto"
    if kind not in KINDS:
        raise QueryError(f"unknown kind {kind[:40]!r}: one of {', '.join(KINDS)}")
    if not text:
        return None
    if len(text) > MAX_QUERY:
        raise QueryError(f"the query is {len(text):,} characters long; ids, keys and file names are at most "
                         f"{MAX_QUERY}")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise QueryError("the query holds control characters, which no id, key or file name has")
    trace_id = trace_id_in(text)
    telemetry = _telemetry(text)
    if kind == "trace" and not trace_id:
        raise QueryError(f"{text[:80]!r} is not a trace id: 32 hex digits, a UUID, or a traceparent "
                         "00-<trace id>-<span id>-<flags>")
    if kind == "telemetry" and telemetry is None:
        raise QueryError(f"{text[:80]!r} is not a telemetry id and time: the id, a space, then the time in "
                         "epoch seconds or as YYYY-MM-DDTHH:MM:SS (UTC), e.g. 7 1767225600")
    limits = {"order": 128, "product": 64}
    if kind in limits and len(text) > limits[kind]:
        raise QueryError(f"a {KINDS[kind].lower()} is at most {limits[kind]} characters")
    return Query(kind=kind, text=text, trace_id=trace_id, telemetry=telemetry)


