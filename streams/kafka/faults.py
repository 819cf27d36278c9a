"""What a consumer does when applying a batch fails: the fault rules of the runtime.

This room holds pure policy (no Kafka, no app imports; Django's and
psycopg2's exception classes only):

* `is_transient(exc)`: the database or the broker was away (connection lost,
  server restarting, deadlock, serialization failure, produce timeout). The
  batch is retried, unchanged, after a backoff; nothing is dead-lettered.
* anything else raised while a batch is applied is about the data (a value
  the database refuses, a handler that did not expect a payload): the runtime
  bisects the batch in savepoints (`runtime.apply_isolating`) and dead-letters
  exactly the messages that fail on their own.
* `DlqLimit`: a systemic fault (a code or schema fault makes the database
  refuse *every* message) must not dead-letter a whole topic. When more than
  `max_consecutive` messages in a row were refused by the database, the batch
  is rolled back instead and retried with backoff, and the consumer reports
  itself paused with the reason (after Sentry arroyo's DlqLimit).
* `Backoff`: exponential delays with a cap, for both of the above.
* `fault_point(name)`: where the fault-injection tests kill a process at an
  exact step (CONSUMER_FAULT_KILL_AT=name in its environment); a no-op otherwise.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field

import psycopg2
from confluent_kafka import KafkaException
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerError

from .producer import DeliveryError

# Errors that say "try again later", never "this message is bad".
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    psycopg2.OperationalError,  # raw cursors (COPY, execute_values) raise psycopg2's own classes
    psycopg2.InterfaceError,
    DeliveryError,
    KafkaException,  # a produce or a metadata call while the broker is away
    BrokerError,  # Celery's broker (Redis) away while a handler queues a task
    ConnectionError,
    TimeoutError,
)


# Read once: the fault-injection tests start a process with it; production never sets it.
_KILL_AT = os.environ.get("CONSUMER_FAULT_KILL_AT", "")


def fault_point(name: str) -> None:
    """SIGKILL this process here when CONSUMER_FAULT_KILL_AT names this point: the crash
    at an exact step that a test cannot hit by timing a kill from outside."""
    if _KILL_AT == name:
        os.kill(os.getpid(), signal.SIGKILL)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_ERRORS)


class SystemicFailure(Exception):
    """Every message of a long run was refused: a fault of the code or the schema, not of the data."""


@dataclass
class Backoff:
    """Exponential backoff: 0.5 s, 1 s, 2 s ... capped at `cap` seconds."""

    base: float = 0.5
    cap: float = 30.0
    failures: int = 0
    until: float = 0.0  # time.monotonic() before which nothing is retried

    def fail(self) -> float:
        delay = min(self.base * 2**self.failures, self.cap)
        self.failures += 1
        self.until = time.monotonic() + delay
        return delay

    def reset(self) -> None:
        self.failures = 0
        self.until = 0.0

    def remaining(self) -> float:
        return max(self.until - time.monotonic(), 0.0)


@dataclass
class DlqLimit:
    """Counts messages the database refused in a row (reset by any message it accepted)."""

    max_consecutive: int
    consecutive: int = 0
    refused_total: int = field(default=0)

    def check(self, *, refused: int, accepted: int) -> None:
        """Raise SystemicFailure if this batch would push the run of refusals past the limit."""
        run = refused if accepted else self.consecutive + refused
        if refused and run > self.max_consecutive:
            raise SystemicFailure(
                f"{run} messages in a row were refused by the database (limit "
                f"{self.max_consecutive}): this looks like a code or schema fault, not bad data"
            )

    def record(self, *, refused: int, accepted: int) -> None:
        self.refused_total += refused
        self.consecutive = refused if accepted else self.consecutive + refused
