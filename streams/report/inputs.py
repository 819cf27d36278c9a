"""The report's inputs: the telemetry tables read into sorted numpy columns.

Callers: report/services.py. Reads MachineMetric and WorkOrderReading (the
telemetry pipeline's tables, by their table names) with a binary COPY; imports
numpy, Django's connection and this package's method (Inputs).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from django.db import connection

from streams.telemetry.models import MachineMetric, WorkOrderReading

from .method import Inputs


def _window_sql(time_from: int | None, time_to: int | None) -> tuple[str, list[int]]:
    clauses, params = [], []
    if time_from is not None:
        clauses.append("time >= %s")
        params.append(time_from)
    if time_to is not None:
        clauses.append("time <= %s")
        params.append(time_to)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


# PostgreSQL binary COPY of (int4 or int8, int8, float8) rows: a 19-byte header
# (+ extension area), then per row a field count and (length, value) per field.
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


def _fetch_columns(sql: str, params: list[Any], first_type: str) -> list[np.ndarray]:
    """Read (id, time, value) rows with a binary COPY straight into numpy columns.

    Much faster than fetching tuples (a 100x factory data set reads in tens of
    milliseconds instead of seconds); the columns are NOT NULL, so every row has
    the same fixed layout."""
    with connection.cursor() as cursor:
        query = cursor.mogrify(sql, params)
        if isinstance(query, bytes):
            query = query.decode()
        buffer = io.BytesIO()
        cursor.cursor.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT binary)", buffer)
    raw = buffer.getvalue()
    if not raw.startswith(_COPY_SIGNATURE):
        raise ValueError("unexpected COPY output")
    extension = int.from_bytes(raw[15:19], "big")
    body = raw[19 + extension:-2]  # without the header and the -1 trailer
    first = ">i4" if first_type == "int4" else ">i8"
    dtype = np.dtype([("n", ">i2"), ("l1", ">i4"), ("a", first), ("l2", ">i4"), ("t", ">i8"),
                      ("l3", ">i4"), ("v", ">f8")])
    rows = np.frombuffer(body, dtype=dtype)
    return [rows["a"].astype(np.int64), rows["t"].astype(np.int64), rows["v"].astype(np.float64)]


def report_inputs_load(*, time_from: int | None = None, time_to: int | None = None) -> Inputs:
    """Read the telemetry tables (optionally a time window) into columns."""
    where, params = _window_sql(time_from, time_to)
    mp, mt, mv = _fetch_columns(
        f"SELECT parameter_id, time, value FROM {MachineMetric._meta.db_table}{where}", params, "int4",
    )
    wp, wt, wv = _fetch_columns(
        f"SELECT product, time, production FROM {WorkOrderReading._meta.db_table}{where}", params, "int4",
    )
    return Inputs.from_columns(mp, mt, mv, wp, wt, wv)
