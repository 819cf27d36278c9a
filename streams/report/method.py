"""The correlation report's method (seed 000): for each product, machine parameters ranked
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

This room is pure computation over numpy columns: no database, no Django
models. Callers: report/services.py (builds), tests. May import numpy, scipy
and the settings (ReportParameters.from_settings), nothing of other pipelines.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings

METHOD = "asof-interval-pearson/v1"
DIRECTIONS = ("backward", "nearest")
RANK_BY = ("interval", "raw")


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
