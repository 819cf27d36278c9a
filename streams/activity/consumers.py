"""The consumers of seed 003, registered in streams/consumers.py:

* `standardize`: `sensor_data` and `user_activity` -> the standard shape -> `processed_data`;
* `processed_sink`: `processed_data` -> sensor and activity tables (idempotent on the origin).

`processed_data` is re-checked on the way in, since anyone can publish there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streams.kafka.decoding import INT32_MAX, INT64_MAX, decode_json_object
from streams.kafka.producer import Outbound
from streams.kafka.registry import BatchOutcome, Envelope, MessageRejected
from streams.kafka.topics import topic_name

from .models import SensorReading
from .services import ACTIVITY, SENSOR, origin_of, readings_store, standardize_activity, standardize_sensor

MAX_TOPIC_LENGTH = 249  # Kafka's own limit, and the origin_topic column


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


def handle_sink(envelopes: Sequence[Envelope]) -> BatchOutcome:
    return BatchOutcome(applied=readings_store(events=[e.value for e in envelopes]))
