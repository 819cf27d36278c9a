"""What the API views that publish to Kafka share: authentication, answers, schema pieces.

Callers: the telemetry, products and ingest APIs and the telemetry ASGI hot
path, so an unacknowledged publish or a field error reads the same at every
endpoint.
"""

from __future__ import annotations

import logging
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response

from streams.kafka.producer import DeliveryError

from .tokens import CachedTokenAuthentication

logger = logging.getLogger(__name__)

AUTHENTICATION = [CachedTokenAuthentication, SessionAuthentication]

Answer = tuple[int, dict[str, Any], dict[str, str]]  # status, JSON body, headers

KAFKA_UNAVAILABLE = ("Kafka is unavailable: the events were not acknowledged, retry later "
                     "(events are idempotent on their natural keys, so a retry is safe).")


def field_errors(errors: list[dict[str, Any]]) -> dict[str, list[str]]:
    """FieldChecker errors as DRF-style {field: [messages]}."""
    out: dict[str, list[str]] = {}
    for error in errors:
        out.setdefault(error.get("field") or "non_field_errors", []).append(error["message"])
    return out


def unavailable_answer(exc: DeliveryError) -> Answer:
    # The broker's error names hosts and ports: it goes to the log, not to the caller.
    logger.warning("api_publish_failed error=%s", exc)
    return 503, {"detail": KAFKA_UNAVAILABLE}, {"Retry-After": "5"}


def kafka_unavailable(exc: DeliveryError) -> Response:
    status_code, body, headers = unavailable_answer(exc)
    return Response(body, status=status_code, headers=headers)


class AcceptedSchema(serializers.Serializer):
    accepted = serializers.IntegerField()
    topic = serializers.CharField()


class ErrorSchema(serializers.Serializer):
    detail = serializers.CharField()


ACCEPTED = OpenApiResponse(AcceptedSchema, description="Published and acknowledged by Kafka.")
INVALID = OpenApiResponse(OpenApiTypes.OBJECT, description="Field errors; nothing was published.")
UNAVAILABLE = OpenApiResponse(ErrorSchema, description="Kafka did not acknowledge in time.")
