"""Benchmark of the correlation report (not a test; prints figures).

    .venv/bin/python bench/report.py [--scale 100]

Inside one transaction that is rolled back at the end (the database is left as
it was), loads the factory sample data (settings.FACTORY_DATA_DIR) once and
--scale times (time-shifted copies), and times the whole report build on each:
reading the tables, the numpy computation and storing the rows. The baseline
is the plain-Python version of the same method (tests/streams/report/test_report.py) on
the sample data.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")


class Rollback(Exception):
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=100, help="Copies of the sample data (default 100).")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import transaction

    from streams.models import MachineMetric, WorkOrderReading
    from streams.report.inputs import report_inputs_load
    from streams.report.loader import factory_data_load
    from streams.report.method import ReportParameters, correlate
    from streams.report.services import report_create
    from tests.streams.report.test_report import independent_report

    folder = Path(settings.FACTORY_DATA_DIR)
    metrics = json.loads((folder / "metrics.json").read_text())
    workorders = json.loads((folder / "workorder.json").read_text())
    params = ReportParameters.from_settings()

    started = time.perf_counter()
    independent_report(metrics, workorders, tolerance=params.tolerance_seconds, min_samples=params.min_samples)
    plain_s = time.perf_counter() - started
    print(f"method {params}")
    print(f"plain Python (baseline), sample data: {plain_s * 1000:8.0f} ms")

    try:
        with transaction.atomic():
            MachineMetric.objects.all().delete()
            WorkOrderReading.objects.all().delete()
            results = {}
            for scale in (1, args.scale):
                load_started = time.perf_counter()
                loaded = factory_data_load(metrics=metrics, workorders=workorders, scale=scale)
                load_s = time.perf_counter() - load_started
                started = time.perf_counter()
                report = report_create(trigger="shell")
                total_s = time.perf_counter() - started
                assert report.status == "done", report.error
                started = time.perf_counter()
                inputs = report_inputs_load()
                read_s = time.perf_counter() - started
                started = time.perf_counter()
                correlate(inputs, params)
                compute_s = time.perf_counter() - started
                results[scale] = total_s
                results[f"compute{scale}"] = compute_s
                print(f"{scale:>4}x: {loaded.metrics:>8} metrics {loaded.workorders:>7} work-order readings  "
                      f"report {total_s * 1000:7.0f} ms (read {read_s * 1000:.0f} ms, numpy {compute_s * 1000:.0f} ms)"
                      f"  [load {load_s:.1f} s, not part of the report]")
                MachineMetric.objects.all().delete()
                WorkOrderReading.objects.all().delete()
            print(f"numpy computation on the sample: {plain_s / results['compute1']:.0f}x faster than plain Python; "
                  f"{args.scale}x data takes {results[args.scale] / results[1]:.0f}x the time of 1x")
            print(f"target: report on {args.scale}x < 10 s: {'met' if results[args.scale] < 10 else 'NOT met'}")
            raise Rollback
    except Rollback:
        pass


if __name__ == "__main__":
    main()
