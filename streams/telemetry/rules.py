"""The telemetry rules (seed 000): what a metric and a work-order event must be.

One definition for the `telemetry` consumer, the API (the DRF view and the
ASGI hot path, through publish.py) and the factory loader of the report, so an
event the API accepts is one the consumer stores. Pure: imports only the
platform's field rules.
"""

from __future__ import annotations

from typing import Any

from streams.kafka.decoding import EPOCH_MAX, EPOCH_MIN, INT32_MAX, FieldChecker


def validate_metric(data: dict[str, Any]) -> dict[str, Any]:
    check = FieldChecker(data)
    parsed = {
        "parameter_id": check.integer("id", minimum=0, maximum=INT32_MAX),
        "value": check.number("val"),
        "time": check.integer("time", minimum=EPOCH_MIN, maximum=EPOCH_MAX),
    }
    check.done()
    return parsed


def validate_workorder(data: dict[str, Any]) -> dict[str, Any]:
    check = FieldChecker(data)
    parsed = {
        "time": check.integer("time", minimum=EPOCH_MIN, maximum=EPOCH_MAX),
        "product": check.integer("product", minimum=0, maximum=INT32_MAX),
        "production": check.number("production", minimum=0),
    }
    check.done()
    return parsed
