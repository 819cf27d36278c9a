"""Sensor readings and user activity (seed 003).

* `standardize` reads `sensor_data` and `user_activity`, validates each event
  and publishes one standard shape to `processed_data`: a `type` ("sensor" or
  "activity"), an ISO 8601 UTC `timestamp`, the same field names for the same
  things, sensors enriched with a `status` (thresholds are settings), and the
  origin (topic, partition, offset) of the raw message as `event_id`/`origin`.
* `processed_sink` reads `processed_data` and stores rows keyed by that
  origin, so a processed message that is published or consumed twice is
  stored once. The rows are exported as CSV per type (the seed's
  processed_data_sensor.csv / processed_data_activity.csv).
"""

from __future__ import annotations

import csv
import json
import random
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from console.spreadsheet import neutralize_cell
from .kafka.decoding import INT32_MAX, INT64_MAX, FieldChecker, decode_json_object, iso, parse_timestamp
from .kafka.producer import Outbound
from .kafka.registry import BatchOutcome, Envelope, MessageRejected
from .kafka.topics import topic_name
from .models import ActivityEvent, SensorReading

SENSOR, ACTIVITY = "sensor", "activity"
ACTIONS = ("click", "view", "add_to_cart", "purchase", "login", "logout", "search")

SENSOR_COLUMNS = ["timestamp", "sensor_id", "temperature_celsius", "humidity_percent", "status"]
ACTIVITY_COLUMNS = ["timestamp", "user_id", "session_id", "action", "details"]
MAX_TOPIC_LENGTH = 249  # Kafka's own limit, and the origin_topic column




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


def decode_raw(envelope: Envelope) -> dict[str, Any]:
    data = decode_json_object(envelope.raw)
    origin = origin_of(envelope)
    if envelope.topic == topic_name("sensor_data"):
        return standardize_sensor(data, origin)
    if envelope.topic == topic_name("user_activity"):
        return standardize_activity(data, origin)
    raise MessageRejected(f"standardize does not read topic {envelope.topic}")


def handle_standardize(envelopes: Sequence[Envelope]) -> BatchOutcome:
    target = topic_name("processed_data")
    outbound = [
        Outbound(
            topic=target,
            value=e.value,
            key=e.value["sensor_id"] if e.value["type"] == SENSOR else e.value["user_id"],
        )
        for e in envelopes
    ]
    return BatchOutcome(outbound=outbound, applied=len(outbound))


# --------------------------------------------------------------------- sink


def decode_processed(envelope: Envelope) -> dict[str, Any]:
    """A `processed_data` message: re-checked, since anyone can publish there."""
    data = decode_json_object(envelope.raw)
    origin = data.get("origin")
    if not isinstance(origin, dict) or not all(k in origin for k in ("topic", "partition", "offset")):
        # A message published by someone else: key it by its own position.
        origin = origin_of(envelope)
    if not isinstance(origin["topic"], str) or not all(
        isinstance(origin[k], int) and not isinstance(origin[k], bool) for k in ("partition", "offset")
    ):
        raise MessageRejected("origin must carry topic (string), partition and offset (integers)",
                              [{"field": "origin", "rule": "origin", "message": "malformed origin"}])
    if not (0 < len(origin["topic"]) <= MAX_TOPIC_LENGTH and 0 <= origin["partition"] <= INT32_MAX
            and 0 <= origin["offset"] <= INT64_MAX):
        raise MessageRejected(
            f"origin is out of range: a topic of 1-{MAX_TOPIC_LENGTH} characters, a partition 0-{INT32_MAX} "
            f"and an offset 0-{INT64_MAX}",
            [{"field": "origin", "rule": "range", "message": "origin topic, partition or offset out of range"}])
    kind = data.get("type")
    if kind == SENSOR:
        value = standardize_sensor(data, origin)
    elif kind == ACTIVITY:
        value = standardize_activity({**data, "event_timestamp": data.get("timestamp")}, origin)
    else:
        raise MessageRejected(
            f"type must be {SENSOR!r} or {ACTIVITY!r}, got {kind!r}",
            [{"field": "type", "rule": "choice", "message": "unknown type", "value": repr(kind)[:200]}],
        )
    if kind == SENSOR and data.get("status") in SensorReading.Status.values:
        value["status"] = data["status"]  # keep what the processor decided at the time
    return value


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


def handle_sink(envelopes: Sequence[Envelope]) -> BatchOutcome:
    return BatchOutcome(applied=readings_store(events=[e.value for e in envelopes]))


# ---------------------------------------------------------------- CSV export

def csv_cell(value: Any) -> str:
    """A spreadsheet-safe cell: text starting like a formula gets a leading quote.

    Numbers are written as numbers (a negative temperature stays -3.5), since
    only text can smuggle a formula.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, datetime):
        return iso(value)
    if not isinstance(value, str):
        value = json.dumps(value, separators=(",", ":"), sort_keys=True)
    return neutralize_cell(value)


class _Echo:
    def write(self, value: str) -> str:
        return value


def export_rows(kind: str, queryset=None) -> Iterator[str]:
    """CSV lines (header first) for one type, streamed from the database."""
    if kind == SENSOR:
        model, columns = SensorReading, SENSOR_COLUMNS
    elif kind == ACTIVITY:
        model, columns = ActivityEvent, ACTIVITY_COLUMNS
    else:
        raise ValueError(f"unknown type {kind!r}")
    queryset = model.objects.all() if queryset is None else queryset
    writer = csv.writer(_Echo())
    yield writer.writerow(columns)
    for row in queryset.order_by("timestamp", "id").values_list(*columns).iterator(chunk_size=2000):
        yield writer.writerow([csv_cell(v) for v in row])


def export_filename(kind: str) -> str:
    return f"processed_data_{kind}.csv"


# -------------------------------------------------------------- load generator


def sensor_events(n: int, *, sensors: int = 10, now: datetime | None = None,
                  rng: random.Random | None = None) -> list[dict[str, Any]]:
    """`n` sensor readings in the seed's shape, temperatures around the thresholds."""
    rng = rng or random.Random()
    now = now or timezone.now()
    return [
        {
            "timestamp": (now - timedelta(milliseconds=10 * (n - i))).astimezone(UTC).isoformat(),
            "sensor_id": f"sensor-{rng.randint(1, sensors)}",
            "temperature_celsius": round(rng.uniform(15.0, 30.0), 2),
            "humidity_percent": round(rng.uniform(20.0, 80.0), 2),
        }
        for i in range(n)
    ]


def activity_events(n: int, *, users: int = 50, now: datetime | None = None,
                    rng: random.Random | None = None) -> list[dict[str, Any]]:
    """`n` user activity events in the seed's shape (clicks, purchases, ...)."""
    rng = rng or random.Random()
    now = now or timezone.now()
    sessions: dict[int, str] = {}
    events = []
    for i in range(n):
        user = rng.randint(1, users)
        session = sessions.setdefault(user, uuid.uuid4().hex[:12])
        action = rng.choice(ACTIONS)
        details: dict[str, Any] = {"page": rng.choice(["/", "/products", "/cart", "/checkout"])}
        if action == "purchase":
            details["amount"] = round(rng.uniform(5, 300), 2)
        events.append({
            "event_timestamp": (now - timedelta(milliseconds=10 * (n - i))).astimezone(UTC).isoformat(),
            "user_id": f"user-{user}",
            "session_id": session,
            "action": action,
            "details": details,
        })
    return events
