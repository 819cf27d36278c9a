"""Connection settings shared by every Kafka client of the console."""

from __future__ import annotations

from typing import Any

from django.conf import settings


def client_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS}
    config.update(settings.KAFKA_CLIENT_CONFIG)
    config.update(overrides)
    return config
