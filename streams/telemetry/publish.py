"""Publishing telemetry events from the API: the one POST path.

The DRF view (api.py) and the ASGI hot path (asgi.py) both answer through
`telemetry_messages` (validation by the consumer's rules: the messages to
publish, or TelemetryInvalid with the 400 answer) and `may_publish_telemetry`
(who may publish), then publish and wait for Kafka's acknowledgement:
`telemetry_ingest` in a thread, `telemetry_ingest_async` on the event loop. So
both answer alike, and tightening a rule here tightens both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from rest_framework import permissions

from console.publishing import Answer, field_errors, unavailable_answer
from streams.kafka.producer import DeliveryError, Outbound, publish_and_wait, publish_and_wait_async
from streams.kafka.registry import MessageRejected, Source, register_source
from streams.kafka.topics import topic_name

from .rules import validate_metric, validate_workorder

PUBLISH_TELEMETRY = "streams.publish_telemetry"

# What the POST path puts into the pipelines (the pipeline map, console/ops/topology.py).
register_source(Source("api:metrics", "endpoint", "POST /api/metrics/", produces=("metrics",),
                       pipeline="telemetry", link="/api/metrics/"))
register_source(Source("api:workorders", "endpoint", "POST /api/workorders/", produces=("workorders",),
                       pipeline="telemetry", link="/api/workorders/"))


def may_publish_telemetry(user) -> bool:
    """Whether `user` may POST telemetry events: the DRF view (CanPublishTelemetry)
    and the ASGI hot path ask this, and only this."""
    if not (user and user.is_authenticated and user.is_active):
        return False
    # Asked of the same user object on every request while the token cache holds it
    # (console/tokens.py): the answer is kept on it, as Django keeps its permissions
    # there, and not asked of every authentication backend each time.
    may = getattr(user, "_console_may_publish_telemetry", None)
    if may is None:
        may = user._console_may_publish_telemetry = user.has_perm(PUBLISH_TELEMETRY)
    return may


class CanPublishTelemetry(permissions.BasePermission):
    """DRF's face of `may_publish_telemetry`."""

    def has_permission(self, request, view) -> bool:
        return may_publish_telemetry(request.user)


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


class TelemetryInvalid(Exception):
    """The request's events break the rules: nothing is published, and `body` is the 400
    answer's (field errors per event, or what is wrong with the request as a whole)."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.body = body


def telemetry_messages(*, kind: TelemetryKind, data: Any) -> list[Outbound]:
    """Validate one event or an array of them: the messages to publish (never empty).

    Raises TelemetryInvalid when the body or any event breaks the rules: one bad
    event refuses the whole request."""
    single = isinstance(data, dict)
    items = [data] if single else data
    if not isinstance(items, list):
        raise TelemetryInvalid({"non_field_errors": ["expected a JSON object or an array of objects"]})
    limit = settings.TELEMETRY_BATCH_MAX_EVENTS
    if not items:
        raise TelemetryInvalid({"non_field_errors": ["the array is empty"]})
    if len(items) > limit:
        raise TelemetryInvalid({"non_field_errors": [f"at most {limit} events per request, got {len(items)}"]})
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
            raise TelemetryInvalid(errors["0"])
        raise TelemetryInvalid({"detail": f"{len(errors)} of {len(items)} events are invalid; none was published",
                                "errors": errors})
    name = topic_name(kind.topic)
    return [Outbound(name, value, key=key) for key, value in events]


def _accepted(messages: list[Outbound]) -> Answer:
    return 202, {"accepted": len(messages), "topic": messages[0].topic}, {}


def telemetry_ingest(*, kind: TelemetryKind, data: Any) -> Answer:
    """Validate and publish, answering only once Kafka acknowledged: (status, body, headers).

    The DRF view's path."""
    try:
        messages = telemetry_messages(kind=kind, data=data)
        publish_and_wait(messages)
    except TelemetryInvalid as exc:
        return 400, exc.body, {}
    except DeliveryError as exc:
        return unavailable_answer(exc)
    return _accepted(messages)


async def telemetry_ingest_async(*, kind: TelemetryKind, data: Any) -> Answer:
    """`telemetry_ingest` for the ASGI hot path: the same rules and answers, awaiting the acks."""
    try:
        messages = telemetry_messages(kind=kind, data=data)
        await publish_and_wait_async(messages)
    except TelemetryInvalid as exc:
        return 400, exc.body, {}
    except DeliveryError as exc:
        return unavailable_answer(exc)
    return _accepted(messages)
