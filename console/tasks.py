"""The console's Celery tasks (discovered by console/celery.py's autodiscover_tasks)."""

from __future__ import annotations

from celery import shared_task

from .ops.lag_history import lag_sample_take


# No retry: the next beat, CONSOLE_LAG_SAMPLE_SECONDS later, is the retry, and a sample
# taken late would be a point at the wrong time.
@shared_task(name="console.sample_lag", ignore_result=True, max_retries=0)
def sample_lag() -> int:
    """Every CONSOLE_LAG_SAMPLE_SECONDS (Celery beat): sample every consumer's lag, prune the history."""
    return lag_sample_take().written
