"""Sensor readings and user activity (seed 003): the standard shape and how rows are stored.

* `standardize_sensor` / `standardize_activity` validate a raw event and give
  the one standard shape published to `processed_data`: a `type` ("sensor" or
  "activity"), an ISO 8601 UTC `timestamp`, the same field names for the same
  things, sensors enriched with a `status` (thresholds are settings), and the
  origin (topic, partition, offset) of the raw message as `event_id`/`origin`.
* `readings_store` stores standardized events keyed by that origin, so a
  processed message that is published or consumed twice is stored once.

Callers: this package's consumers (consumers.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings

from streams.kafka.decoding import FieldChecker, iso, parse_timestamp
from streams.kafka.registry import Envelope

from .models import ActivityEvent, SensorReading

SENSOR, ACTIVITY = "sensor", "activity"


def sensor_status(temperature: float) -> str:
    """Warning above the warning threshold, Low below the low one, else Normal."""
    if temperature > settings.SENSOR_TEMP_WARNING_ABOVE:
        return SensorReading.Status.WARNING.value
    if temperature < settings.SENSOR_TEMP_LOW_BELOW:
        return SensorReading.Status.LOW.value
    return SensorReading.Status.NORMAL.value


def origin_of(envelope: Envelope) -> dict[str, Any]:
    return {"topic": envelope.topic, "partition": envelope.partition, "offset": envelope.offset}


def event_id_of(origin: dict[str, Any]) -> str:
    return f"{origin['topic']}:{origin['partition']}:{origin['offset']}"


def standardize_sensor(data: dict[str, Any], origin: dict[str, Any]) -> dict[str, Any]:
    check = FieldChecker(data)
    moment = check.timestamp("timestamp")
    sensor_id = check.identifier("sensor_id")
    temperature = check.number("temperature_celsius", minimum=-100, maximum=150)
    humidity = check.number("humidity_percent", minimum=0, maximum=100)
    check.done()
    return {
        "type": SENSOR,
        "event_id": event_id_of(origin),
        "timestamp": iso(moment),
        "sensor_id": sensor_id,
        "temperature_celsius": temperature,
        "humidity_percent": humidity,
        "status": sensor_status(temperature),
        "origin": origin,
    }


def standardize_activity(data: dict[str, Any], origin: dict[str, Any]) -> dict[str, Any]:
    check = FieldChecker(data)
    moment = check.timestamp("event_timestamp")
    user_id = check.identifier("user_id")
    session_id = check.identifier("session_id")
    action = check.identifier("action", max_length=64)
    check.done()
    return {
        "type": ACTIVITY,
        "event_id": event_id_of(origin),
        "timestamp": iso(moment),
        "user_id": user_id,
        "session_id": session_id,
        "action": action.lower(),
        "details": data.get("details"),
        "origin": origin,
    }


def readings_store(*, events: Iterable[dict[str, Any]]) -> int:
    """Insert standardized events; ones already stored (same origin) are skipped."""
    sensors, activities = [], []
    for e in events:
        common = {
            "event_id": e["event_id"],
            "origin_topic": e["origin"]["topic"],
            "origin_partition": e["origin"]["partition"],
            "origin_offset": e["origin"]["offset"],
            "timestamp": parse_timestamp(e["timestamp"]),
        }
        if e["type"] == SENSOR:
            sensors.append(SensorReading(
                **common, sensor_id=e["sensor_id"], temperature_celsius=e["temperature_celsius"],
                humidity_percent=e["humidity_percent"], status=e["status"],
            ))
        else:
            activities.append(ActivityEvent(
                **common, user_id=e["user_id"], session_id=e["session_id"], action=e["action"],
                details=e["details"],
            ))
    SensorReading.objects.bulk_create(sensors, ignore_conflicts=True, batch_size=5000)
    ActivityEvent.objects.bulk_create(activities, ignore_conflicts=True, batch_size=5000)
    return len(sensors) + len(activities)
