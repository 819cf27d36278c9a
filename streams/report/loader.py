"""Loading a factory data set (metrics.json, workorders.json) straight into the telemetry tables.

Callers: `load_factory_data`, `build_report --load-factory-data`, the report
benchmark and tests. Validates with the telemetry pipeline's rules and stores
by its overwrite rule (streams.telemetry.services.readings_store), declared
lookups: the report reads what telemetry stores, and a load that replaces a
reading records the same TelemetryOverwrite as the consumer would.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from streams.kafka.registry import MessageRejected
from streams.telemetry.models import TelemetryOverwrite
from streams.telemetry.rules import validate_metric, validate_workorder
from streams.telemetry.services import readings_store

# Readings per call of readings_store: each call is two statements, whose arrays stay this size.
CHUNK = 50_000

Reading = tuple[int, int, float]


@dataclass
class LoadResult:
    metrics: int
    workorders: int
    invalid: list[dict[str, Any]]


def factory_data_load(*, metrics: list[Any], workorders: list[Any], scale: int = 1,
                      dry_run: bool = False) -> LoadResult:
    """Validate factory events (the telemetry rules) and store them by telemetry's overwrite rule.

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
    metric_readings = [(r["parameter_id"], r["time"], r["value"]) for r in good_m]
    workorder_readings = [(r["product"], r["time"], r["production"]) for r in good_w]
    times = [t for _, t, _ in metric_readings] + [t for _, t, _ in workorder_readings]
    span = max(times) - min(times) + 1 if times else 0
    if not dry_run:
        with transaction.atomic():
            for kind, readings in ((TelemetryOverwrite.Kind.METRIC, metric_readings),
                                   (TelemetryOverwrite.Kind.WORKORDER, workorder_readings)):
                for chunk in _chunks(_copies(readings, scale=scale, span=span)):
                    readings_store(kind=kind, readings=chunk)
    return LoadResult(metrics=_distinct(metric_readings) * scale, workorders=_distinct(workorder_readings) * scale,
                      invalid=invalid)


def _copies(readings: list[Reading], *, scale: int, span: int) -> Iterator[Reading]:
    """The readings, then `scale` - 1 copies of them, copy k moved by k * span seconds: span is the
    data set's time range plus one second, so the copies never overlap."""
    for copy in range(scale):
        shift = copy * span
        for key, time, value in readings:
            yield key, time + shift, value


def _chunks(readings: Iterator[Reading]) -> Iterator[list[Reading]]:
    chunk: list[Reading] = []
    for reading in readings:
        chunk.append(reading)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _distinct(readings: list[Reading]) -> int:
    return len({(key, time) for key, time, _ in readings})
