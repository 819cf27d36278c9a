"""Reads for the quarantine console: previews, downloads, permissions.

Called by: quarantine's admin, API and command.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.db.models import Count, QuerySet

from console.models import AuditEntry
from console.spreadsheet import neutralize_cell

from .models import QuarantineRecord
from .sources import file_original, file_source

PREVIEW_LINES = 50
# Spreadsheet programs run cells starting with these as formulas.

ACTION_PERMISSIONS = {
    "release": "quarantine.release_quarantinerecord",
    "reprocess": "quarantine.reprocess_quarantinerecord",
    "discard": "quarantine.discard_quarantinerecord",
    "view": "quarantine.view_quarantinerecord",
}


def user_can(user: Any, action: str) -> bool:
    return bool(user and user.is_active and user.has_perm(ACTION_PERMISSIONS[action]))


def record_audit_entries(*, record: QuarantineRecord) -> QuerySet[AuditEntry]:
    """The record's trail in the audit log, newest first."""
    return record.audit_entries.select_related("actor").order_by("-at", "-id")


def record_reason_counts(*, limit: int = 30) -> list[tuple[str, int]]:
    """The most frequent reasons, for the admin's reason filter."""
    rows = (QuarantineRecord.objects.values("reason").annotate(n=Count("id")).order_by("-n", "reason")[:limit])
    return [(r["reason"], r["n"]) for r in rows]


def error_fields(record: QuarantineRecord) -> dict[str, list[str]]:
    """Field (or column) name -> messages, from the structured errors."""
    fields: dict[str, list[str]] = {}
    for error in record.errors or []:
        if not isinstance(error, dict):
            continue
        name = error.get("field", error.get("column"))
        if name is None:
            continue
        fields.setdefault(str(name), []).append(str(error.get("message") or error.get("rule") or "invalid"))
    return fields


def error_columns(record: QuarantineRecord) -> list[str]:
    """The error table's columns: the keys the errors carry, in a stable order."""
    preferred = ["line", "column", "field", "value", "rule", "message", "type"]
    seen: list[str] = []
    for error in (record.errors or [])[:500]:
        if isinstance(error, dict):
            for key in error:
                if key not in seen and key != "traceback":
                    seen.append(key)
    return [k for k in preferred if k in seen] + [k for k in seen if k not in preferred]


def record_payload_preview(*, record: QuarantineRecord) -> dict[str, Any]:
    """The payload with its bad fields marked: a key/value table for a JSON
    object, otherwise the text with the failing line (if the error has one)."""
    text = record.payload_text(limit=100_000)
    bad = error_fields(record)
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, dict):
        rows = [
            {"key": key, "value": json.dumps(val, ensure_ascii=False), "bad": key in bad,
             "messages": bad.get(key, [])}
            for key, val in value.items()
        ]
        rows += [
            {"key": key, "value": "(missing)", "bad": True, "messages": messages}
            for key, messages in bad.items()
            if key not in value
        ]
        return {"kind": "json", "rows": rows, "pretty": json.dumps(value, indent=2, ensure_ascii=False)}
    bad_lines = {e.get("line") for e in record.errors or [] if isinstance(e, dict) and e.get("line")}
    lines = [{"number": i, "text": line, "bad": i in bad_lines}
             for i, line in enumerate(text.splitlines() or [text], start=1)][:PREVIEW_LINES]
    return {"kind": "text", "lines": lines, "pretty": text}


def record_original_path(*, record: QuarantineRecord) -> Path | None:
    """Where a quarantined file's original lies (asked of the ingest app)."""
    if record.source != QuarantineRecord.Source.FILE or record.purged_at is not None:
        return None
    try:
        path = file_original(record)
    except Exception:  # the owner cannot locate it
        return None
    return path if path is not None and path.is_file() else None


def _error_lines(record: QuarantineRecord) -> dict[int, list[dict[str, Any]]]:
    lines: dict[int, list[dict[str, Any]]] = {}
    for error in record.errors or []:
        if isinstance(error, dict):
            try:
                line = int(error.get("line"))
            except (TypeError, ValueError):
                continue
            lines.setdefault(line, []).append(error)
    return lines


def record_file_preview(*, record: QuarantineRecord, limit: int = PREVIEW_LINES) -> dict[str, Any] | None:
    """The header and the offending lines of a quarantined file (by the
    errors' line numbers), each cell marked when an error names its column."""
    path = record_original_path(record=record)
    if path is None:
        return None
    by_line = _error_lines(record)
    wanted = sorted(by_line)[:limit]
    found: dict[int, str] = {}
    header: list[str] = []
    last = wanted[-1] if wanted else 1
    with path.open("r", encoding="utf-8", errors="replace", newline="") as handle:
        for number, line in enumerate(handle, start=1):
            if number == 1:
                header = _split_csv(line)
            if number in wanted:
                found[number] = line
            if number >= last:
                break
    rows = []
    for number in wanted:
        cells = _split_csv(found.get(number, "")) if number in found else []
        errors = by_line[number]
        bad_columns = {str(e.get("column")) for e in errors if e.get("column") is not None}
        marked = []
        for index, cell in enumerate(cells):
            name = header[index] if index < len(header) else str(index + 1)
            messages = [str(e.get("message") or e.get("rule")) for e in errors
                        if str(e.get("column")) in (name, str(index + 1), str(index))]
            marked.append({"value": cell, "bad": bool(messages) or name in bad_columns, "messages": messages})
        rows.append({
            "line": number,
            "cells": marked,
            "missing": number not in found,
            "messages": [str(e.get("message") or e.get("rule")) for e in errors],
        })
    width = max([len(header)] + [len(r["cells"]) for r in rows])
    header = header + [str(i + 1) for i in range(len(header), width)]
    return {"header": header, "rows": rows, "truncated": len(by_line) > limit}


def _split_csv(line: str) -> list[str]:
    try:
        return next(csv.reader([line.rstrip("\r\n")]), [])
    except csv.Error:
        return [line.rstrip("\r\n")]


def neutralize_csv(lines: Iterator[str]) -> Iterator[str]:
    """Re-write CSV lines with every formula-like cell neutralized."""
    for line in lines:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(neutralize_cell(c) for c in _split_csv(line))
        yield buffer.getvalue()


def record_rejected_rows_csv(*, record: QuarantineRecord) -> Iterator[str]:
    """A CSV of just the rejected rows (header first), safe to open in a spreadsheet.
    The file's owner knows its contract and says which rows those are."""
    source = file_source()
    if source is None:
        return iter(())
    return neutralize_csv(iter(source.rejected_rows(record=record)))
