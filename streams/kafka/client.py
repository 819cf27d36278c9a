"""Connection settings shared by every Kafka client of the console, and the words
an operator is shown when the cluster refuses a call."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaException
from django.conf import settings


def client_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS}
    config.update(settings.KAFKA_CLIENT_CONFIG)
    config.update(overrides)
    return config


def failure_code(exc: Exception) -> int | None:
    """librdkafka's error code of a failed call (KafkaError._TIMED_OUT ...), None for another error."""
    if isinstance(exc, KafkaException) and exc.args and hasattr(exc.args[0], "code"):
        return exc.args[0].code()
    return None


def failure_reason(exc: Exception) -> str:
    """The broker's own words for a failed call ("Broker: Not leader for partition"),
    else the exception's type and text."""
    if isinstance(exc, KafkaException) and exc.args and hasattr(exc.args[0], "str"):
        return exc.args[0].str()
    return f"{type(exc).__name__}: {exc}" if str(exc) else "no answer in time"
