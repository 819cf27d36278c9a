"""What every producer of the console shares: its configuration, the message
(`Outbound`), the error when the broker does not acknowledge (`DeliveryError`)
and the delivery counts (`stats`).

Internal to the platform: producer.py (the front door) and _web_producer.py
build on it, and callers take these names from producer.py. The counts are a
prometheus_client counter, so that /metrics adds up every web worker's in
multiprocess mode (gunicorn.conf.py, docs/operations.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client import Counter

from .client import client_config
from .headers import Headers
_ENCODING = orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


class DeliveryError(Exception):
    """The broker did not acknowledge every message in time."""


# Not in prometheus_client's default registry: console.ops.metrics exports it, this process's
# own or, under gunicorn, every worker's (each writes its counts to a file of
# PROMETHEUS_MULTIPROC_DIR, which must be set before prometheus_client is imported).
deliveries = Counter("console_producer_deliveries", "Messages the broker acknowledged (delivered) or refused "
                     "(failed) to the web process's producers, all workers.", ["outcome"], registry=None)


class DeliveryStats:
    """This process's deliveries, counted in `deliveries`."""

    def __init__(self) -> None:
        self._delivered = deliveries.labels("delivered")
        self._failed = deliveries.labels("failed")

    def record(self, ok: bool) -> None:
        (self._delivered if ok else self._failed).inc()

    def add(self, *, delivered: int = 0, failed: int = 0) -> None:
        if delivered:
            self._delivered.inc(delivered)
        if failed:
            self._failed.inc(failed)


stats = DeliveryStats()


# Slotted, not frozen: one is built per forwarded message, and a frozen dataclass's
# __init__ cost twice as much (1.1 against 0.5 us).
@dataclass(slots=True)
class Outbound:
    """A message to publish: topic name, value (bytes or JSON-able), key, headers."""

    topic: str
    value: bytes | dict[str, Any] | list[Any]
    key: bytes | str | None = None
    headers: Headers | None = None

    def encoded_value(self) -> bytes:
        if isinstance(self.value, bytes):
            return self.value
        # orjson, several times cheaper than json.dumps per message. Datetimes are written
        # in C as ISO 8601, a UTC one as decoding.iso writes it (with a `Z`; naive means
        # UTC); Decimals by str(), as json.dumps(default=str) did.
        return orjson.dumps(self.value, default=str, option=_ENCODING)


def producer_config(**overrides: Any) -> dict[str, Any]:
    """Every producer is idempotent with `acks=all`."""
    return client_config(
        **{
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            "message.timeout.ms": 30000,
            "client.id": f"console-{os.getpid()}",
            **overrides,
        }
    )
