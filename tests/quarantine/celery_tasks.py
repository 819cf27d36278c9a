"""A task for the task-quarantine tests, loaded into the test worker with
`--include tests.quarantine.celery_tasks`."""

from __future__ import annotations

from pathlib import Path

from celery import shared_task


@shared_task(name="tests.quarantine.divide", autoretry_for=(ZeroDivisionError,), max_retries=1,
             default_retry_delay=0)
def divide(numerator: float, denominator: float, out_path: str) -> float:
    """Writes numerator / denominator to out_path; fails (after a retry) on zero."""
    result = numerator / denominator
    Path(out_path).write_text(str(result))
    return result
