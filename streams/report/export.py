"""The report as CSV (seed report.csv columns), spreadsheet-safe.

Callers: the report API (`/api/reports/<id>/csv/`) and admin.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

from console.spreadsheet import neutralize_cell

from .models import CorrelationReport

CSV_HEADER = ["product", "rank", "parameter_id", "correlation", "samples", "p_value"]



def report_csv_lines(*, report: CorrelationReport) -> Iterator[str]:
    """The report as CSV (seed report.csv columns), one line at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values: Iterable[Any]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([csv_safe(v) for v in values])
        return buffer.getvalue()

    yield line(CSV_HEADER)
    for row in report.rows.order_by("product", "rank"):
        yield line([row.product, row.rank, row.parameter_id,
                    "" if row.correlation is None else row.correlation,
                    row.samples, "" if row.p_value is None else row.p_value])


def csv_safe(value: Any) -> Any:
    """Neutralize text a spreadsheet would run as a formula (numbers pass unchanged)."""
    return neutralize_cell(value) if isinstance(value, str) else value
