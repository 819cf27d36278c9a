"""Paced producing shared by the generator commands."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import Any

from streams.kafka.producer import Outbound, batch_ack_timeout, produce_and_wait

TICK_SECONDS = 0.1


def paced_produce(
    *, make: Callable[[int], list[Outbound]], rate: float, duration: float, total: int | None = None,
    report: Callable[[int], Any] | None = None,
) -> int:
    """Produce about `rate` messages per second for `duration` seconds (or until
    `total` messages), in 100 ms ticks, each tick acknowledged by the broker.
    Stops cleanly on SIGINT/SIGTERM. Returns how many were produced."""
    stop = {"now": False}

    def _stop(_signum, _frame) -> None:
        stop["now"] = True

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    sent = 0
    started = time.monotonic()
    last_report = started
    try:
        while not stop["now"]:
            elapsed = time.monotonic() - started
            if duration and elapsed >= duration:
                break
            due = int(rate * (elapsed + TICK_SECONDS)) - sent
            if total is not None:
                due = min(due, total - sent)
            if due > 0:
                sent += produce_and_wait(make(due), timeout=batch_ack_timeout())
            if total is not None and sent >= total:
                break
            if report and time.monotonic() - last_report >= 5:
                report(sent)
                last_report = time.monotonic()
            time.sleep(max(0.0, started + elapsed + TICK_SECONDS - time.monotonic()))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return sent
