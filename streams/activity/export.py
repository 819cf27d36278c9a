"""The stored sensor and activity rows as CSV (the seed's processed_data_sensor.csv and
processed_data_activity.csv), streamed and spreadsheet-safe.

Callers: the activity API (`.../export/`) and admin (Export selected as CSV).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.http import StreamingHttpResponse

from console.spreadsheet import neutralize_cell
from streams.kafka.decoding import iso

from .models import ActivityEvent, SensorReading
from .services import ACTIVITY, SENSOR

SENSOR_COLUMNS = ["timestamp", "sensor_id", "temperature_celsius", "humidity_percent", "status"]
ACTIVITY_COLUMNS = ["timestamp", "user_id", "session_id", "action", "details"]

__all__ = ["ACTIVITY", "SENSOR", "csv_download", "export_filename", "export_rows"]


def csv_cell(value: Any) -> str:
    """A spreadsheet-safe cell: text starting like a formula gets a leading quote.

    Numbers are written as numbers (a negative temperature stays -3.5), since
    only text can smuggle a formula.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, datetime):
        return iso(value)
    if not isinstance(value, str):
        value = json.dumps(value, separators=(",", ":"), sort_keys=True)
    return neutralize_cell(value)


class _Echo:
    def write(self, value: str) -> str:
        return value


def export_rows(kind: str, queryset=None) -> Iterator[str]:
    """CSV lines (header first) for one type, streamed from the database."""
    if kind == SENSOR:
        model, columns = SensorReading, SENSOR_COLUMNS
    elif kind == ACTIVITY:
        model, columns = ActivityEvent, ACTIVITY_COLUMNS
    else:
        raise ValueError(f"unknown type {kind!r}")
    queryset = model.objects.all() if queryset is None else queryset
    writer = csv.writer(_Echo())
    yield writer.writerow(columns)
    for row in queryset.order_by("timestamp", "id").values_list(*columns).iterator(chunk_size=2000):
        yield writer.writerow([csv_cell(v) for v in row])


def export_filename(kind: str) -> str:
    return f"processed_data_{kind}.csv"


def csv_download(kind: str, queryset) -> StreamingHttpResponse:
    """The streamed CSV download of `queryset` (the API's export and the admin action)."""
    response = StreamingHttpResponse(export_rows(kind, queryset), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{export_filename(kind)}"'
    return response
