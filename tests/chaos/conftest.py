"""Fault injection against the real services: `make test-chaos`.

The chaos tests stop and start the shared PostgreSQL, Redis and Kafka (through
`scripts/services.sh stop|start NAME`) and SIGKILL console processes, so they
never run in the normal `make test`: every test here is skipped unless the
environment has CHAOS=1. `make test-chaos` sets it, and runs the suite under
/tmp/chaos.lock (tests/chaos/with_lock.sh) once no other pytest is running.

Each test prints one `chaos <scenario>: key=value ...` line with its figures;
the summary at the end of the session repeats them all.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import InterfaceError, OperationalError, connection

from tests.conftest import ROOT
from tests.ingest.conftest import inbox  # noqa: F401  (the ingest tests' inbox fixture, reused)

ENABLED = os.environ.get("CHAOS") == "1"
LOCK = os.environ.get("CHAOS_LOCK", "/tmp/chaos.lock")  # held by tests/chaos/with_lock.sh
SERVICES = ROOT / "scripts" / "services.sh"
NAMES = ("postgres", "redis", "kafka")

_figures: list[str] = []


def pytest_runtest_setup(item) -> None:
    if not ENABLED:
        pytest.skip("chaos tests stop the shared services: run them with `make test-chaos` (CHAOS=1)")
    if not os.path.exists(LOCK):
        pytest.skip(f"chaos tests run under {LOCK} (other test runs wait for it): "
                    "use `make test-chaos` or tests/chaos/with_lock.sh")


def pytest_terminal_summary(terminalreporter) -> None:
    if not _figures:
        return
    terminalreporter.section("chaos figures")
    for line in _figures:
        terminalreporter.write_line(line)


class Figures:
    """Collects each scenario's figures line: printed at once and in the session summary."""

    def record(self, scenario: str, **values: Any) -> str:
        """Values as given (use secs() for durations); floats get two decimals."""
        parts = [f"{key}={value:.2f}" if isinstance(value, float) else f"{key}={value}"
                 for key, value in values.items()]
        line = f"chaos {scenario}: " + " ".join(parts)
        _figures.append(line)
        print("\n" + line, flush=True)
        return line


def secs(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}s"


@pytest.fixture
def figures() -> Figures:
    return Figures()


def services_sh(*args: str, timeout: float = 240) -> str:
    result = subprocess.run([str(SERVICES), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"scripts/services.sh {' '.join(args)} failed ({result.returncode}):\n"
                           f"{result.stdout}{result.stderr}")
    return result.stdout + result.stderr


def service_states() -> dict[str, str]:
    states = {}
    for line in services_sh("status", timeout=60).splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in NAMES:
            states[parts[0]] = parts[1]
    return states


def reconnect_db(timeout: float = 60.0) -> None:
    """Drop this process's (possibly dead) connection and wait until PostgreSQL answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection.close()
        except Exception:
            pass
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return
        except (OperationalError, InterfaceError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


def db_or(default: Any, fn: Callable[[], Any]) -> Any:
    """fn() against the database, or `default` while PostgreSQL is away (for polling)."""
    try:
        return fn()
    except (OperationalError, InterfaceError):
        try:
            connection.close()
        except Exception:
            pass
        return default


class Services:
    """Stops and starts the shared services; whatever a test stopped is started again."""

    def __init__(self) -> None:
        self.stopped: set[str] = set()
        self.log: list[tuple[str, str, float]] = []  # (action, name, monotonic time when done)

    def stop(self, name: str) -> float:
        """Stop `name`; returns the time.monotonic() at which it was down."""
        assert name in NAMES
        self.stopped.add(name)
        services_sh("stop", name)
        done = time.monotonic()
        self.log.append(("stopped", name, done))
        return done

    def start(self, name: str) -> float:
        """Start `name` and wait until it is ready; returns the time.monotonic() it was."""
        services_sh("start", name)
        if name == "postgres":
            reconnect_db()
        self.stopped.discard(name)
        done = time.monotonic()
        self.log.append(("started", name, done))
        return done

    @contextmanager
    def down(self, name: str) -> Iterator[float]:
        """`with services.down("kafka") as stopped_at: ...`, started again however the block ends."""
        stopped_at = self.stop(name)
        try:
            yield stopped_at
        finally:
            if name in self.stopped:
                self.start(name)

    def restore(self) -> None:
        for name in list(self.stopped):
            self.start(name)
        states = service_states()
        for name in NAMES:
            if states.get(name) != "up":
                self.start(name)


@pytest.fixture
def services(transactional_db) -> Iterator[Services]:
    """Service control for one test; every service is up again when the test ends."""
    control = Services()
    try:
        yield control
    finally:
        control.restore()
        if "postgres" in {name for _, name, _ in control.log}:
            reconnect_db()
