"""Connection settings shared by every Kafka client of the console, and the words
an operator is shown when a call fails: `failure_reason` for a call to the
cluster, `describe` for any error (a dead letter's reason, a failed action, a
service that does not answer on the health and dashboard pages)."""

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


def describe(exc: BaseException, limit: int | None = 400) -> str:
    """`Type: message` on one line, NUL-free, cut to `limit` characters (None: not cut)."""
    text = " ".join(str(exc).split()) or repr(exc)
    return f"{type(exc).__name__}: {text}".replace("\x00", "\\x00")[:limit]


def failure_reason(exc: Exception) -> str:
    """The broker's own words for a failed call ("Broker: Not leader for partition"),
    else the exception's type and text."""
    if isinstance(exc, KafkaException) and exc.args and hasattr(exc.args[0], "str"):
        return exc.args[0].str()
    return describe(exc, limit=None) if str(exc) else "no answer in time"
