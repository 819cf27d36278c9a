"""The correlation report (seed 000): for each product, machine parameters ranked
by how strongly they correlate with the product's production output.

Method "asof-interval-pearson/v1" (parameters are settings, recorded per report):

1. Work orders of one product are sorted by time. `production` is the
   cumulative output of the running order, so a drop marks a new order.
2. Output per interval: between consecutive readings of the same order,
   `(production[i] - production[i-1]) / (time[i] - time[i-1]) * 3600`
   (units per hour; the rate corrects for uneven spacing). An interval across
   an order reset (production dropped) is left out.
3. As-of join: each work-order reading at time t gets, for every parameter, the
   last reading of that parameter at or before t (direction "backward"; or the
   closest on either side with "nearest", ties going backward) if it lies within
   `tolerance_seconds` of t; otherwise the pair is left out for that parameter.
4. Pearson r, the number of aligned pairs n and the two-sided p-value (t-test
   with n-2 degrees of freedom, as scipy.stats.pearsonr) are computed between
   each parameter and (a) the output per interval, the value joined at the
   interval's end, and (b) the raw cumulative production.
5. Parameters are ranked per product by |r| of the series named by `rank_by`
   ("interval" by default), strongest first; fewer than `min_samples` pairs or a
   constant series give no r and rank last; ties go to the lower parameter id.

Inputs are MachineMetric and WorkOrderReading rows within an optional time
window; the report stores the window, the actual time range, the row counts
and a SHA-256 of the inputs, so a rerun on the same data reproduces it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from console.spreadsheet import neutralize_cell
from .models import CorrelationReport, CorrelationRow, MachineMetric, WorkOrderReading

logger = logging.getLogger(__name__)

METHOD = "asof-interval-pearson/v1"
DIRECTIONS = ("backward", "nearest")
RANK_BY = ("interval", "raw")
CSV_HEADER = ["product", "rank", "parameter_id", "correlation", "samples", "p_value"]


@dataclass(frozen=True)
class ReportParameters:
    tolerance_seconds: int
    direction: str
    min_samples: int
    rank_by: str

    @classmethod
    def from_settings(cls, **overrides: Any) -> "ReportParameters":
        values = {
            "tolerance_seconds": settings.REPORT_ASOF_TOLERANCE_SECONDS,
            "direction": settings.REPORT_ASOF_DIRECTION,
            "min_samples": settings.REPORT_MIN_SAMPLES,
            "rank_by": settings.REPORT_RANK_BY,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        params = cls(
            tolerance_seconds=int(values["tolerance_seconds"]),
            direction=str(values["direction"]),
            min_samples=int(values["min_samples"]),
            rank_by=str(values["rank_by"]),
        )
        params.check()
        return params

    def check(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if self.rank_by not in RANK_BY:
            raise ValueError(f"rank_by must be one of {RANK_BY}, got {self.rank_by!r}")
        if self.tolerance_seconds < 0:
            raise ValueError("tolerance_seconds must be >= 0")
        if self.min_samples < 3:
            raise ValueError("min_samples must be >= 3")


@dataclass(frozen=True)
class Inputs:
    """Sorted columns: metrics by (parameter, time), work orders by (product, time)."""

    metric_parameter: np.ndarray
    metric_time: np.ndarray
    metric_value: np.ndarray
    workorder_product: np.ndarray
    workorder_time: np.ndarray
    workorder_production: np.ndarray

    @classmethod
    def from_columns(cls, metric_parameter, metric_time, metric_value,
                     workorder_product, workorder_time, workorder_production) -> "Inputs":
        mp = np.asarray(metric_parameter, dtype=np.int64)
        mt = np.asarray(metric_time, dtype=np.int64)
        mv = np.asarray(metric_value, dtype=np.float64)
        wp = np.asarray(workorder_product, dtype=np.int64)
        wt = np.asarray(workorder_time, dtype=np.int64)
        wv = np.asarray(workorder_production, dtype=np.float64)
        m_order = np.lexsort((mt, mp))
        w_order = np.lexsort((wt, wp))
        return cls(mp[m_order], mt[m_order], mv[m_order], wp[w_order], wt[w_order], wv[w_order])

    def digest(self) -> str:
        h = hashlib.sha256()
        for column in (self.metric_parameter, self.metric_time, self.metric_value,
                       self.workorder_product, self.workorder_time, self.workorder_production):
            h.update(np.ascontiguousarray(column).tobytes())
        return h.hexdigest()

    def time_range(self) -> tuple[int | None, int | None]:
        times = [a for a in (self.metric_time, self.workorder_time) if a.size]
        if not times:
            return None, None
        return int(min(a.min() for a in times)), int(max(a.max() for a in times))


@dataclass
class Correlation:
    r: float | None
    n: int
    p: float | None


@dataclass
class ResultRow:
    product: int
    rank: int
    parameter_id: int
    correlation: float | None
    samples: int
    p_value: float | None
    interval_correlation: float | None
    interval_samples: int
    interval_p_value: float | None
    raw_correlation: float | None
    raw_samples: int
    raw_p_value: float | None


# -------------------------------------------------------------- computation


def pearson(x: np.ndarray, y: np.ndarray, *, min_samples: int) -> Correlation:
    """Pearson r and its two-sided p-value (Student t with n-2 degrees of freedom)."""
    n = int(x.size)
    if n < min_samples:
        return Correlation(None, n, None)
    dx = x - x.mean()
    dy = y - y.mean()
    sxx = float(dx @ dx)
    syy = float(dy @ dy)
    if sxx <= 0.0 or syy <= 0.0:
        return Correlation(None, n, None)
    r = float(np.clip((dx @ dy) / np.sqrt(sxx * syy), -1.0, 1.0))
    if abs(r) == 1.0:
        return Correlation(r, n, 0.0)
    from scipy.special import stdtr  # here, not at import: scipy costs every process ~20 MB

    t = r * np.sqrt((n - 2) / (1.0 - r * r))
    p = float(2.0 * stdtr(n - 2, -abs(t)))
    return Correlation(r, n, p)


def asof_values(reading_time: np.ndarray, reading_value: np.ndarray, at: np.ndarray, *,
                tolerance: int, direction: str) -> np.ndarray:
    """The value of a sorted reading series as of each time in `at` (NaN when none within tolerance)."""
    out = np.full(at.shape, np.nan)
    if reading_time.size == 0 or at.size == 0:
        return out
    before = np.searchsorted(reading_time, at, side="right") - 1
    has_before = before >= 0
    before_c = np.clip(before, 0, reading_time.size - 1)
    gap_before = np.where(has_before, at - reading_time[before_c], np.iinfo(np.int64).max)
    chosen = before_c
    gap = gap_before
    if direction == "nearest":
        after = before + 1
        has_after = after < reading_time.size
        after_c = np.clip(after, 0, reading_time.size - 1)
        gap_after = np.where(has_after, reading_time[after_c] - at, np.iinfo(np.int64).max)
        use_after = gap_after < gap_before
        chosen = np.where(use_after, after_c, before_c)
        gap = np.where(use_after, gap_after, gap_before)
    ok = gap <= tolerance
    out[ok] = reading_value[chosen[ok]]
    return out


def interval_output(times: np.ndarray, production: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Output per hour of each interval inside one order, and which intervals count.

    Element i describes the interval ending at reading i+1."""
    dt = np.diff(times).astype(np.float64)
    dp = np.diff(production)
    valid = (dp >= 0) & (dt > 0)
    rate = np.zeros_like(dp)
    np.divide(dp * 3600.0, dt, out=rate, where=valid)
    return rate, valid


def correlate(inputs: Inputs, params: ReportParameters) -> list[ResultRow]:
    rows: list[ResultRow] = []
    parameters, p_starts = np.unique(inputs.metric_parameter, return_index=True)
    p_ends = np.append(p_starts[1:], inputs.metric_parameter.size)
    products, w_starts = np.unique(inputs.workorder_product, return_index=True)
    w_ends = np.append(w_starts[1:], inputs.workorder_product.size)
    for product, ws, we in zip(products.tolist(), w_starts, w_ends):
        wt = inputs.workorder_time[ws:we]
        wv = inputs.workorder_production[ws:we]
        rate, valid = interval_output(wt, wv)
        results: list[tuple[int, Correlation, Correlation]] = []
        for parameter, ps, pe in zip(parameters.tolist(), p_starts, p_ends):
            aligned = asof_values(
                inputs.metric_time[ps:pe], inputs.metric_value[ps:pe], wt,
                tolerance=params.tolerance_seconds, direction=params.direction,
            )
            raw_ok = ~np.isnan(aligned)
            raw = pearson(aligned[raw_ok], wv[raw_ok], min_samples=params.min_samples)
            at_end = aligned[1:]
            int_ok = valid & ~np.isnan(at_end)
            interval = pearson(at_end[int_ok], rate[int_ok], min_samples=params.min_samples)
            results.append((parameter, interval, raw))

        def sort_key(item: tuple[int, Correlation, Correlation]) -> tuple[int, float, int]:
            chosen = item[1] if params.rank_by == "interval" else item[2]
            if chosen.r is None:
                return (1, 0.0, item[0])
            return (0, -abs(chosen.r), item[0])

        for rank, (parameter, interval, raw) in enumerate(sorted(results, key=sort_key), start=1):
            chosen = interval if params.rank_by == "interval" else raw
            rows.append(ResultRow(
                product=product, rank=rank, parameter_id=parameter,
                correlation=chosen.r, samples=chosen.n, p_value=chosen.p,
                interval_correlation=interval.r, interval_samples=interval.n, interval_p_value=interval.p,
                raw_correlation=raw.r, raw_samples=raw.n, raw_p_value=raw.p,
            ))
    return rows


# --------------------------------------------------------------- selectors


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


# ----------------------------------------------------------------- services


def report_request(*, trigger: str, by=None, time_from: int | None = None, time_to: int | None = None,
                   parameters: dict[str, Any] | None = None) -> CorrelationReport:
    """Create a pending report and queue its build once the row is committed."""
    params = ReportParameters.from_settings(**(parameters or {}))
    report = CorrelationReport.objects.create(
        trigger=trigger, requested_by=by if getattr(by, "is_authenticated", False) else None,
        method=METHOD, parameters=asdict(params), time_from=time_from, time_to=time_to,
    )
    transaction.on_commit(lambda: _queue_build(report.pk))
    return report


def _queue_build(report_id: int) -> None:
    """Queue the build; if the Celery broker is unreachable, the report says so
    instead of staying pending forever."""
    from .tasks import report_build_task

    try:
        report_build_task.delay(report_id)
    except Exception as exc:  # kombu raises a variety of connection errors
        logger.exception("report_queue_failed report=%s", report_id)
        CorrelationReport.objects.filter(pk=report_id).update(
            status=CorrelationReport.Status.FAILED, error=f"could not queue the build: {exc}"[:2000],
            finished_at=timezone.now(),
        )


def report_build(*, report_id: int) -> CorrelationReport:
    """Compute a report in place (pending -> running -> done/failed)."""
    report = CorrelationReport.objects.get(pk=report_id)
    if report.status == CorrelationReport.Status.DONE:
        return report  # a redelivered task must not compute twice
    report.status = CorrelationReport.Status.RUNNING
    report.save(update_fields=["status"])
    started = time.monotonic()
    try:
        params = ReportParameters.from_settings(**(report.parameters or {}))
        inputs = report_inputs_load(time_from=report.time_from, time_to=report.time_to)
        rows = correlate(inputs, params)
        with transaction.atomic():
            report.rows.all().delete()
            CorrelationRow.objects.bulk_create([CorrelationRow(report=report, **asdict(r)) for r in rows],
                                               batch_size=2000)
            report.method = METHOD
            report.parameters = asdict(params)
            report.input_time_min, report.input_time_max = inputs.time_range()
            report.metric_count = int(inputs.metric_time.size)
            report.workorder_count = int(inputs.workorder_time.size)
            report.input_digest = inputs.digest()
            report.status = CorrelationReport.Status.DONE
            report.error = ""
            report.duration_ms = int((time.monotonic() - started) * 1000)
            report.finished_at = timezone.now()
            report.save()
    except Exception as exc:
        logger.exception("report_build_failed report=%s", report_id)
        report.status = CorrelationReport.Status.FAILED
        report.error = f"{type(exc).__name__}: {exc}"[:2000]
        report.duration_ms = int((time.monotonic() - started) * 1000)
        report.finished_at = timezone.now()
        report.save()
    logger.info("report_built report=%s status=%s ms=%s metrics=%s workorders=%s",
                report.pk, report.status, report.duration_ms, report.metric_count, report.workorder_count)
    return report


def report_create(*, trigger: str, by=None, time_from: int | None = None, time_to: int | None = None,
                  parameters: dict[str, Any] | None = None) -> CorrelationReport:
    """Create and compute a report in this process (the shell command)."""
    params = ReportParameters.from_settings(**(parameters or {}))
    report = CorrelationReport.objects.create(
        trigger=trigger, requested_by=by, method=METHOD, parameters=asdict(params),
        time_from=time_from, time_to=time_to,
    )
    return report_build(report_id=report.pk)


def report_schedule_ensure() -> str:
    """Create or update the django-celery-beat entry of the scheduled report (idempotent)."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    name = "Correlation report (scheduled)"
    spec = settings.REPORT_SCHEDULE_CRONTAB.split()
    if not spec:
        deleted, _ = PeriodicTask.objects.filter(name=name).delete()
        return "removed" if deleted else "none"
    if len(spec) != 5:
        raise ValueError(f"REPORT_SCHEDULE_CRONTAB needs 5 fields, got {settings.REPORT_SCHEDULE_CRONTAB!r}")
    minute, hour, day_of_month, month_of_year, day_of_week = spec
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year,
        day_of_week=day_of_week, timezone="UTC",
    )
    task, created = PeriodicTask.objects.get_or_create(
        name=name, defaults={"task": "streams.report_scheduled", "crontab": crontab},
    )
    if created:
        return "created"
    if task.task != "streams.report_scheduled" or task.crontab_id != crontab.pk:
        # An operator's enabled/disabled choice is kept; only the schedule follows the setting.
        task.task, task.crontab, task.interval = "streams.report_scheduled", crontab, None
        task.save()
        return "updated"
    return "unchanged"


# ------------------------------------------------------------ sample data


@dataclass
class LoadResult:
    metrics: int
    workorders: int
    invalid: list[dict[str, Any]]


def factory_data_load(*, metrics: list[Any], workorders: list[Any], scale: int = 1,
                      dry_run: bool = False) -> LoadResult:
    """Validate factory events (the telemetry rules) and upsert them on their natural keys.

    `scale` > 1 appends time-shifted copies of the whole data set (for benchmarks):
    copy k is moved by k * (span + 1) seconds, so the copies never overlap."""
    from .kafka.registry import MessageRejected
    from .telemetry import validate_metric, validate_workorder

    invalid: list[dict[str, Any]] = []
    good_m: list[dict[str, Any]] = []
    good_w: list[dict[str, Any]] = []
    for source, items, validate, sink in (("metrics", metrics, validate_metric, good_m),
                                          ("workorders", workorders, validate_workorder, good_w)):
        for index, item in enumerate(items):
            try:
                if not isinstance(item, dict):
                    raise MessageRejected("not a JSON object", [{"field": None, "message": "expected an object"}])
                sink.append(validate(item))
            except MessageRejected as exc:
                invalid.append({"file": source, "index": index, "reason": exc.reason, "errors": exc.errors})
    m = {(r["parameter_id"], r["time"]): r["value"] for r in good_m}
    w = {(r["product"], r["time"]): r["production"] for r in good_w}
    mp = np.fromiter((k[0] for k in m), np.int64, len(m))
    mt = np.fromiter((k[1] for k in m), np.int64, len(m))
    mv = np.fromiter(m.values(), np.float64, len(m))
    wp = np.fromiter((k[0] for k in w), np.int64, len(w))
    wt = np.fromiter((k[1] for k in w), np.int64, len(w))
    wv = np.fromiter(w.values(), np.float64, len(w))
    if scale > 1 and (mt.size or wt.size):
        lo = min(a.min() for a in (mt, wt) if a.size)
        hi = max(a.max() for a in (mt, wt) if a.size)
        shifts = np.arange(scale, dtype=np.int64) * (hi - lo + 1)
        mp, mv = np.tile(mp, scale), np.tile(mv, scale)
        mt = (mt[None, :] + shifts[:, None]).ravel()
        wp, wv = np.tile(wp, scale), np.tile(wv, scale)
        wt = (wt[None, :] + shifts[:, None]).ravel()
    if not dry_run:
        with transaction.atomic():
            _upsert_columns(MachineMetric._meta.db_table, ("parameter_id", "time", "value"),
                            ("int", "bigint", "float8"), ("parameter_id", "time"), (mp, mt, mv))
            _upsert_columns(WorkOrderReading._meta.db_table, ("product", "time", "production"),
                            ("int", "bigint", "float8"), ("product", "time"), (wp, wt, wv))
    return LoadResult(metrics=int(mt.size), workorders=int(wt.size), invalid=invalid)


def _upsert_columns(table: str, columns: tuple[str, ...], types: tuple[str, ...], key: tuple[str, ...],
                    arrays: tuple[np.ndarray, ...], chunk: int = 50000) -> None:
    """Set-based upsert of unique-keyed columns: INSERT .. SELECT unnest(arrays) ON CONFLICT."""
    value_columns = [c for c in columns if c not in key]
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}, received_at) "
        f"SELECT *, now() FROM unnest({', '.join(f'%s::{t}[]' for t in types)}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET "
        + ", ".join(f"{c} = EXCLUDED.{c}" for c in value_columns)
        + ", received_at = EXCLUDED.received_at"
    )
    with connection.cursor() as cursor:
        for start in range(0, arrays[0].size, chunk):
            cursor.execute(sql, [a[start:start + chunk].tolist() for a in arrays])
