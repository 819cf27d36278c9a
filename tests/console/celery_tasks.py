"""Tasks for the console's Celery tests, loaded into the test worker with
`--include tests.console.celery_tasks`."""

from __future__ import annotations

from pathlib import Path

from celery import shared_task


@shared_task(name="tests.console.needs_file")
def needs_file(path: str, *, greeting: str = "hello") -> str:
    """Fails until `path` exists (an operator fixes the cause, then retries)."""
    return f"{greeting} {Path(path).read_text()}"


@shared_task(name="tests.console.fails_ignored", ignore_result=True)
def fails_ignored(file_id: int) -> None:
    """Like ingest.process_file, nobody waits for its result; its failure must still show."""
    raise ValueError(f"file {file_id} is unreadable")
