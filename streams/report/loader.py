"""Loading a factory data set (metrics.json, workorders.json) straight into the telemetry tables.

Callers: `load_factory_data`, `build_report --load-factory-data`, the report
benchmark and tests. Validates with the telemetry pipeline's rules (a declared
lookup: the report reads what telemetry stores) and upserts column-wise with
streams.kafka.batchsql.upsert_columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import transaction

from streams.kafka.batchsql import upsert_columns
from streams.kafka.registry import MessageRejected
from streams.telemetry.models import MachineMetric, WorkOrderReading
from streams.telemetry.rules import validate_metric, validate_workorder


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
            upsert_columns(MachineMetric._meta.db_table, ("parameter_id", "time", "value"),
                            ("int", "bigint", "float8"), ("parameter_id", "time"), (mp, mt, mv))
            upsert_columns(WorkOrderReading._meta.db_table, ("product", "time", "production"),
                            ("int", "bigint", "float8"), ("product", "time"), (wp, wt, wv))
    return LoadResult(metrics=int(mt.size), workorders=int(wt.size), invalid=invalid)
