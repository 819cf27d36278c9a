"""`manage.py make_samples`: the newcomer's data does what the README says it does."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from ingest.models import IngestedFile
from streams.report.loader import factory_data_load
from streams.report.services import report_create
from tests.ingest.conftest import inbox  # noqa: F401  (the private inbox fixture)

pytestmark = pytest.mark.django_db


@pytest.mark.services  # the file is published to Kafka on the way
def test_sensor_samples_load_and_the_broken_one_is_quarantined_with_line_and_column(tmp_path, inbox):
    call_command("make_samples", str(tmp_path))
    results = {}
    for name in ("sensors-day-1.csv", "sensors-day-2.csv", "sensors-broken.csv"):
        inbox.drop(name, (tmp_path / "sensors" / name).read_bytes())
        results[name] = inbox.process(name)
    assert results["sensors-day-1.csv"].status == IngestedFile.Status.LOADED
    assert results["sensors-day-1.csv"].rows_loaded == 10_000
    assert results["sensors-day-2.csv"].rows_loaded == 5_000
    broken = results["sensors-broken.csv"]
    assert broken.status == IngestedFile.Status.QUARANTINED
    assert broken.rows_rejected == 3
    assert {(e["line"], e["column"]) for e in broken.errors} >= {(101, "temp"), (501, "humidity")}
    assert 901 in {e["line"] for e in broken.errors}


def test_the_factory_samples_give_the_planted_correlations(tmp_path):
    call_command("make_samples", str(tmp_path))
    metrics = json.loads((tmp_path / "factory" / "metrics.json").read_text())
    workorders = json.loads((tmp_path / "factory" / "workorder.json").read_text())
    assert factory_data_load(metrics=metrics, workorders=workorders).invalid == []
    report = report_create(trigger="shell", parameters={})
    assert report.status == "done", report.error
    top = {row.product: row for row in report.rows.filter(rank=1)}
    assert top[0].parameter_id == 7 and top[0].correlation > 0.9
    assert top[1].parameter_id == 3 and top[1].correlation < -0.9
