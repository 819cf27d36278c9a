"""Publishing telemetry events from the API: one definition for the DRF view and the fast path.

The rules are the `telemetry` consumer's (streams/telemetry.py), so an event the
API accepts is one the consumer stores.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from streams.kafka.acks import publish_and_wait, publish_and_wait_async
from streams.kafka.producer import DeliveryError, Outbound
from streams.kafka.registry import MessageRejected
from streams.kafka.topics import topic_name
from streams.telemetry import validate_metric, validate_workorder

logger = logging.getLogger(__name__)

Answer = tuple[int, dict[str, Any], dict[str, str]]  # status, JSON body, headers


def field_errors(errors: list[dict[str, Any]]) -> dict[str, list[str]]:
    """FieldChecker errors as DRF-style {field: [messages]}."""
    out: dict[str, list[str]] = {}
    for error in errors:
        out.setdefault(error.get("field") or "non_field_errors", []).append(error["message"])
    return out


KAFKA_UNAVAILABLE = ("Kafka is unavailable: the events were not acknowledged, retry later "
                     "(events are idempotent on their natural keys, so a retry is safe).")


def unavailable_answer(exc: DeliveryError) -> Answer:
    # The broker's error names hosts and ports: it goes to the log, not to the caller.
    logger.warning("api_publish_failed error=%s", exc)
    return 503, {"detail": KAFKA_UNAVAILABLE}, {"Retry-After": "5"}


@dataclass(frozen=True)
class TelemetryKind:
    """One telemetry endpoint: its topic, the shared validation rule, and the event it publishes."""

    topic: str
    validate: Callable[[dict[str, Any]], dict[str, Any]]
    event: Callable[[dict[str, Any]], tuple[str, bytes]]  # (key, JSON value) of the published event


# The events are encoded by hand: after validation the values are ints and
# finite floats, whose repr is their JSON form (as json.dumps writes them), and
# this is several times cheaper than json.dumps per event.
METRICS = TelemetryKind(
    topic="metrics", validate=validate_metric,
    event=lambda p: (str(p["parameter_id"]),
                     f'{{"id":{p["parameter_id"]},"val":{p["value"]!r},"time":{p["time"]}}}'.encode()),
)
WORKORDERS = TelemetryKind(
    topic="workorders", validate=validate_workorder,
    event=lambda p: (str(p["product"]),
                     f'{{"time":{p["time"]},"product":{p["product"]},"production":{p["production"]!r}}}'.encode()),
)


def telemetry_messages(*, kind: TelemetryKind, data: Any) -> list[Outbound] | Answer:
    """Validate one event or an array of them: the messages to publish, or the 400 answer."""
    single = isinstance(data, dict)
    items = [data] if single else data
    if not isinstance(items, list):
        return 400, {"non_field_errors": ["expected a JSON object or an array of objects"]}, {}
    limit = settings.TELEMETRY_BATCH_MAX_EVENTS
    if not items:
        return 400, {"non_field_errors": ["the array is empty"]}, {}
    if len(items) > limit:
        return 400, {"non_field_errors": [f"at most {limit} events per request, got {len(items)}"]}, {}
    validate, event = kind.validate, kind.event
    events: list[tuple[str, bytes]] = []
    errors: dict[str, dict[str, list[str]]] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            errors[str(index)] = {"non_field_errors": ["expected a JSON object"]}
            continue
        try:
            events.append(event(validate(item)))
        except MessageRejected as exc:
            errors[str(index)] = field_errors(exc.errors)
    if errors:
        if single:
            return 400, errors["0"], {}
        return 400, {"detail": f"{len(errors)} of {len(items)} events are invalid; none was published",
                     "errors": errors}, {}
    name = topic_name(kind.topic)
    return [Outbound(name, value, key=key) for key, value in events]


def _accepted(messages: list[Outbound]) -> Answer:
    return 202, {"accepted": len(messages), "topic": messages[0].topic}, {}


def telemetry_ingest(*, kind: TelemetryKind, data: Any) -> Answer:
    """Validate and publish, answering only once Kafka acknowledged: (status, body, headers).

    Shared by the DRF view and the WSGI fast path, so both answer alike."""
    messages = telemetry_messages(kind=kind, data=data)
    if isinstance(messages, tuple):
        return messages
    try:
        publish_and_wait(messages)
    except DeliveryError as exc:
        return unavailable_answer(exc)
    return _accepted(messages)


async def telemetry_ingest_async(*, kind: TelemetryKind, data: Any) -> Answer:
    """`telemetry_ingest` for the ASGI hot path: the same rules and answers, awaiting the acks."""
    messages = telemetry_messages(kind=kind, data=data)
    if isinstance(messages, tuple):
        return messages
    try:
        await publish_and_wait_async(messages)
    except DeliveryError as exc:
        return unavailable_answer(exc)
    return _accepted(messages)
