"""Pure logic of the activity pipeline: the sensor status thresholds and the
spreadsheet-safe cells of its exports."""

from __future__ import annotations

import pytest

from streams.activity.export import csv_cell
from streams.activity.services import sensor_status


@pytest.mark.parametrize("temp,status", [(24.0, "Normal"), (24.01, "Warning"), (19.0, "Normal"),
                                         (18.99, "Low"), (-40, "Low"), (60, "Warning")])
def test_sensor_status_thresholds(temp, status):
    assert sensor_status(temp) == status


def test_sensor_status_thresholds_are_settings(settings):
    settings.SENSOR_TEMP_WARNING_ABOVE = 30
    settings.SENSOR_TEMP_LOW_BELOW = 10
    assert sensor_status(25) == "Normal" and sensor_status(31) == "Warning" and sensor_status(9) == "Low"


def test_csv_cells_neutralize_formulas_but_keep_numbers():
    assert [csv_cell(v) for v in ("=1+1", "+1", "-x", "@a", "\tx", "\rx", "ok", -3.5, 7, None)] == [
        "'=1+1", "'+1", "'-x", "'@a", "'\tx", "'\rx", "ok", "-3.5", "7", ""]
