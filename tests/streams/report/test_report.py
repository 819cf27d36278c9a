"""The correlation report: checked against a plain re-implementation of the documented method."""

from __future__ import annotations

import csv
import io
import json
import math
import random
from bisect import bisect_right
from collections import defaultdict
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from scipy import stats

from streams.models import CorrelationReport, MachineMetric, TelemetryOverwrite, WorkOrderReading
from streams.report.export import CSV_HEADER, csv_safe
from streams.report.loader import factory_data_load
from streams.report.method import Inputs, ReportParameters, correlate
from streams.report.services import report_create, report_schedule_ensure
from tests.conftest import wait_until

# The real factory data set of the seed, beside the repository (tests may use it as a fixture).
FACTORY = Path(__file__).resolve().parents[4] / "shared" / "data" / "factory"
if not FACTORY.is_dir():
    FACTORY = Path("/work/shared/data/factory")


def independent_report(metrics, workorders, *, tolerance, min_samples):
    """The documented method written plainly: loops, bisect and scipy.stats.pearsonr."""
    series = defaultdict(dict)  # parameter -> time -> value (last one wins, like the upsert)
    for m in metrics:
        series[m["id"]][m["time"]] = m["val"]
    orders = defaultdict(dict)
    for w in workorders:
        orders[w["product"]][w["time"]] = w["production"]
    result = {}
    for product, readings in orders.items():
        times = sorted(readings)
        output = [readings[t] for t in times]
        ranked = []
        for parameter, values in series.items():
            p_times = sorted(values)
            joined = []
            for t in times:
                i = bisect_right(p_times, t) - 1
                joined.append(values[p_times[i]] if i >= 0 and t - p_times[i] <= tolerance else None)
            raw = [(j, o) for j, o in zip(joined, output) if j is not None]
            interval = []
            for i in range(1, len(times)):
                if output[i] >= output[i - 1] and times[i] > times[i - 1] and joined[i] is not None:
                    rate = (output[i] - output[i - 1]) * 3600 / (times[i] - times[i - 1])
                    interval.append((joined[i], rate))
            r, p = (stats.pearsonr(*zip(*interval)) if len(interval) >= min_samples else (None, None))
            raw_r, raw_p = (stats.pearsonr(*zip(*raw)) if len(raw) >= min_samples else (None, None))
            ranked.append({"parameter": parameter, "r": r, "p": p, "n": len(interval),
                           "raw_r": raw_r, "raw_p": raw_p, "raw_n": len(raw)})
        ranked.sort(key=lambda x: (x["r"] is None, -abs(x["r"] or 0), x["parameter"]))
        result[product] = ranked
    return result


@pytest.mark.django_db
def test_report_on_the_factory_data_matches_the_independent_computation():
    metrics = json.loads((FACTORY / "metrics.json").read_text())
    workorders = json.loads((FACTORY / "workorder.json").read_text())
    loaded = factory_data_load(metrics=metrics, workorders=workorders)
    assert loaded.invalid == []
    report = report_create(trigger="shell", parameters={"tolerance_seconds": 7200, "direction": "backward",
                                                        "min_samples": 10, "rank_by": "interval"})
    assert report.status == "done", report.error
    expected = independent_report(metrics, workorders, tolerance=7200, min_samples=10)
    rows = list(report.rows.order_by("product", "rank"))
    assert {r.product for r in rows} == set(expected) == {0, 1}
    for product, ranked in expected.items():
        mine = [r for r in rows if r.product == product]
        assert [r.parameter_id for r in mine] == [x["parameter"] for x in ranked]
        for row, want in zip(mine, ranked):
            assert row.samples == want["n"] and row.raw_samples == want["raw_n"]
            assert row.correlation == pytest.approx(want["r"], abs=1e-12)
            assert row.p_value == pytest.approx(want["p"], rel=1e-7, abs=1e-15)
            assert row.raw_correlation == pytest.approx(want["raw_r"], abs=1e-12)
            assert row.raw_p_value == pytest.approx(want["raw_p"], rel=1e-7, abs=1e-15)
    # Reproducibility: the inputs are described, and a rerun gives the same rows and digest.
    assert report.method == "asof-interval-pearson/v1"
    assert report.metric_count == len({(m["id"], m["time"]) for m in metrics})
    assert report.workorder_count == len(workorders)
    assert (report.input_time_min, report.input_time_max) == (
        min(x["time"] for x in metrics + workorders), max(x["time"] for x in metrics + workorders))
    again = report_create(trigger="shell", time_from=report.time_from, time_to=report.time_to,
                          parameters=report.parameters)
    assert again.input_digest == report.input_digest
    assert list(again.rows.values_list("product", "rank", "parameter_id", "correlation", "p_value")) == \
        list(report.rows.values_list("product", "rank", "parameter_id", "correlation", "p_value"))



@pytest.mark.django_db
def test_a_load_that_replaces_a_reading_records_the_overwrite_as_the_consumer_does():
    t = 1_700_000_000
    loaded = factory_data_load(metrics=[{"id": 3, "val": 1.0, "time": t}, {"id": 3, "val": 2.0, "time": t},
                                        {"id": 4, "val": 5.0, "time": t}],
                               workorders=[{"time": t, "product": 1, "production": 10.0}])
    assert (loaded.metrics, loaded.workorders, loaded.invalid) == (2, 1, [])
    assert MachineMetric.objects.get(parameter_id=3, time=t).value == 2.0  # the last reading of a key wins
    # Loaded again, unchanged: the same rows, and no reading of key 4 or of the work order is an overwrite.
    factory_data_load(metrics=[{"id": 4, "val": 5.0, "time": t}],
                      workorders=[{"time": t, "product": 1, "production": 10.0}])
    # Then a data set that changes two stored readings.
    factory_data_load(metrics=[{"id": 4, "val": 6.0, "time": t}],
                      workorders=[{"time": t, "product": 1, "production": 12.5}])
    assert MachineMetric.objects.get(parameter_id=4, time=t).value == 6.0
    assert WorkOrderReading.objects.get(product=1, time=t).production == 12.5
    assert set(TelemetryOverwrite.objects.values_list("kind", "key", "time", "old_value", "new_value")) == {
        ("metric", 3, t, 1.0, 2.0), ("metric", 4, t, 5.0, 6.0), ("workorder", 1, t, 10.0, 12.5)}
    # A dry run validates and counts, and writes nothing.
    dry = factory_data_load(metrics=[{"id": 4, "val": 7.0, "time": t}], workorders=[], dry_run=True)
    assert dry.metrics == 1 and MachineMetric.objects.get(parameter_id=4, time=t).value == 6.0


@pytest.mark.django_db
def test_scaled_loads_are_time_shifted_copies_that_never_overlap():
    t = 1_700_000_000
    metrics = [{"id": 1, "val": 1.0, "time": t}, {"id": 1, "val": 2.0, "time": t + 60}]
    workorders = [{"time": t + 30, "product": 0, "production": 3.0}]
    loaded = factory_data_load(metrics=metrics, workorders=workorders, scale=3)
    assert (loaded.metrics, loaded.workorders, loaded.invalid) == (6, 3, [])
    # The data set spans 61 seconds: copy k is moved by k * 61 seconds.
    assert list(MachineMetric.objects.order_by("time").values_list("time", "value")) == [
        (t, 1.0), (t + 60, 2.0), (t + 61, 1.0), (t + 121, 2.0), (t + 122, 1.0), (t + 182, 2.0)]
    assert list(WorkOrderReading.objects.order_by("time").values_list("time", flat=True)) == [
        t + 30, t + 91, t + 152]
    assert not TelemetryOverwrite.objects.exists()

def planted_data(seed: int = 7):
    """3 products on one timeline, 12 noise parameters, and per product one parameter that
    follows the product's output per interval; orders reset every 30 readings."""
    rng = random.Random(seed)
    planted = {0: 4, 1: 9, 2: 11}
    metrics, workorders = [], []
    start = 1_700_000_000
    for product in planted:
        cumulative = 0.0
        for i in range(240):
            t = start + i * 900 + product * 7
            if i % 30 == 0:
                cumulative = 0.0
            rate = rng.uniform(5, 50)
            cumulative += rate * 900 / 3600
            workorders.append({"time": t, "product": product, "production": cumulative})
            # The planted parameter is read shortly before each work-order reading.
            metrics.append({"id": planted[product], "val": 3 * rate + rng.gauss(0, 2), "time": t - rng.randint(1, 60)})
    for parameter in range(12):
        if parameter in planted.values():
            continue
        for i in range(300):
            metrics.append({"id": parameter, "val": rng.gauss(100, 10), "time": start + i * 720 + rng.randint(0, 300)})
    return metrics, workorders, planted


def test_planted_parameter_ranks_first_for_each_product():
    metrics, workorders, planted = planted_data()
    inputs = Inputs.from_columns([m["id"] for m in metrics], [m["time"] for m in metrics],
                                 [m["val"] for m in metrics], [w["product"] for w in workorders],
                                 [w["time"] for w in workorders], [w["production"] for w in workorders])
    rows = correlate(inputs, ReportParameters(tolerance_seconds=1200, direction="backward", min_samples=10,
                                              rank_by="interval"))
    for product, parameter in planted.items():
        first = next(r for r in rows if r.product == product and r.rank == 1)
        assert first.parameter_id == parameter
        assert first.correlation > 0.9 and first.p_value < 1e-10
        assert first.samples == 240 - 8  # 7 order resets and the first reading have no interval
        others = [r for r in rows if r.product == product and r.rank > 1 and r.correlation is not None]
        assert all(abs(r.correlation) < 0.5 for r in others if r.parameter_id not in planted.values())


def test_nearest_direction_and_tolerance_are_honoured():
    inputs = Inputs.from_columns([1, 1], [100, 200], [1.0, 2.0], [0, 0, 0], [90, 150, 260], [0.0, 1.0, 2.0])
    from streams.report.method import asof_values

    t = inputs.workorder_time
    backward = asof_values(inputs.metric_time, inputs.metric_value, t, tolerance=60, direction="backward")
    nearest = asof_values(inputs.metric_time, inputs.metric_value, t, tolerance=60, direction="nearest")
    assert [None if math.isnan(v) else v for v in backward] == [None, 1.0, 2.0]
    assert [None if math.isnan(v) else v for v in nearest] == [1.0, 1.0, 2.0]


def test_csv_cells_that_look_like_formulas_are_neutralized():
    assert csv_safe("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert csv_safe("@x") == "'@x" and csv_safe("\tx") == "'\tx" and csv_safe("+1") == "'+1"
    assert csv_safe(-0.5) == -0.5 and csv_safe("product") == "product"


@pytest.mark.django_db
def test_build_report_command_and_csv_download(anonymous, client_reader, capsys):
    call_command("build_report", "--load-factory-data", str(FACTORY), "--top", "3")
    out = capsys.readouterr().out
    assert "loaded 6895 metrics and 576 work-order readings" in out
    assert "product 0:" in out and "product 1:" in out
    report = CorrelationReport.objects.get()
    assert anonymous.get(f"/api/reports/{report.pk}/csv/").status_code == 401
    response = client_reader.get(f"/api/reports/{report.pk}/csv/")
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert lines[0] == CSV_HEADER
    assert len(lines) == 1 + 2 * 20
    assert lines[1][:3] == ["0", "1", str(report.rows.get(product=0, rank=1).parameter_id)]
    detail = client_reader.get(f"/api/reports/{report.pk}/").json()
    assert detail["parameters"]["tolerance_seconds"] == settings.REPORT_ASOF_TOLERANCE_SECONDS
    assert len(detail["rows"]) == 40
    call_command("build_report", "--like", str(report.pk), "--tolerance", "3600")
    assert CorrelationReport.objects.latest("id").parameters["tolerance_seconds"] == 3600


@pytest.mark.django_db
def test_report_request_validation_and_auth(client_token, client_reader, client_operator, anonymous):
    assert anonymous.post("/api/reports/", {}, format="json").status_code == 401
    # Queueing work needs streams.add_correlationreport: not a service token's, nor a reader's.
    assert client_token.post("/api/reports/", {}, format="json").status_code == 403
    assert client_reader.post("/api/reports/", {}, format="json").status_code == 403
    assert not CorrelationReport.objects.exists()
    bad = client_operator.post("/api/reports/", {"direction": "sideways", "time_from": 5, "time_to": 1}, format="json")
    assert bad.status_code == 400 and "direction" in bad.json()


@pytest.mark.django_db
def test_beat_schedule_is_created_once():
    from django_celery_beat.models import PeriodicTask

    report_schedule_ensure()
    assert report_schedule_ensure() == "unchanged"
    task = PeriodicTask.objects.get(task="streams.report_scheduled")
    assert task.crontab is not None and task.enabled


def test_api_request_is_built_by_the_celery_worker(processes, client_operator):
    factory_data_load(metrics=json.loads((FACTORY / "metrics.json").read_text()),
                      workorders=json.loads((FACTORY / "workorder.json").read_text()))
    processes.celery_worker()
    response = client_operator.post("/api/reports/", {"tolerance_seconds": 3600}, format="json")
    assert response.status_code == 202, response.content
    report_id = response.json()["id"]
    assert response.json()["status"] == "pending"
    report = wait_until(lambda: CorrelationReport.objects.filter(pk=report_id, status="done").first(),
                        message="the report built by the worker")
    assert report.trigger == "api" and report.requested_by.username == "operator-test"
    assert report.parameters["tolerance_seconds"] == 3600 and report.rows.count() == 40


def test_admin_shows_the_report_and_builds_one(processes, admin_client):
    factory_data_load(metrics=json.loads((FACTORY / "metrics.json").read_text()),
                      workorders=json.loads((FACTORY / "workorder.json").read_text()))
    report = report_create(trigger="shell")
    page = admin_client.get(f"/admin/streams/correlationreport/{report.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html and "Product 0" in html and "report.csv" in html
    listing = admin_client.get("/admin/streams/correlationreport/").content.decode()
    assert "Build report now" in listing
    processes.celery_worker()
    response = admin_client.post("/admin/streams/correlationreport/build/")
    assert response.status_code == 302
    new = CorrelationReport.objects.exclude(pk=report.pk).get()
    assert new.trigger == "admin"
    wait_until(lambda: CorrelationReport.objects.get(pk=new.pk).status == "done", message="the admin's report")
    csv_response = admin_client.get(f"/admin/streams/correlationreport/{new.pk}/csv/")
    assert b"".join(csv_response.streaming_content).startswith(b"product,rank,parameter_id")
    for url in ("/admin/streams/product/", "/admin/streams/machinemetric/", "/admin/streams/workorderreading/"):
        assert admin_client.get(url).status_code == 200
