"""Celery tasks that failed for good become quarantine records.

`task_failure` fires once a task raised and will not be retried any more
(a task that retries raises `Retry`, which does not count as a failure), so
this catches exactly the tasks that failed after their retries.

Called by: Celery's task_failure signal, connected in quarantine/apps.py.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import task_failure
from django.conf import settings

logger = logging.getLogger(__name__)


def _request_value(request: Any, name: str) -> Any:
    """A custom message header: Celery puts them on the request (protocol 2)."""
    if request is None:
        return None
    value = getattr(request, name, None)
    if value is None and isinstance(getattr(request, "headers", None), dict):
        value = request.headers.get(name)
    return value


@task_failure.connect(dispatch_uid="quarantine_task_failure")
def record_failed_task(sender=None, task_id: str | None = None, exception: BaseException | None = None,
                       args: Any = None, kwargs: Any = None, traceback: Any = None, einfo: Any = None,
                       **_: Any) -> None:
    name = getattr(sender, "name", None) or "unknown"
    if name in settings.QUARANTINE_IGNORED_TASKS or exception is None:
        return
    from .services import quarantine_task_failure
    from .services.redrive import TASK_REPLAY_COUNT_HEADER

    request = getattr(sender, "request", None)
    delivery = getattr(request, "delivery_info", None) or {}
    try:
        record = quarantine_task_failure(
            task_name=name,
            task_id=str(task_id or ""),
            args=list(args or []),
            kwargs=dict(kwargs or {}),
            exception=exception,
            traceback_text=str(einfo.traceback) if einfo is not None else "",
            queue=delivery.get("routing_key") or None,
            replay_count=_request_value(request, TASK_REPLAY_COUNT_HEADER) or 0,
        )
    except Exception:  # never let bookkeeping hide the original failure
        logger.exception("quarantine_task_failure_not_recorded task=%s id=%s", name, task_id)
        return
    logger.warning("task_quarantined task=%s id=%s record=%s", name, task_id, getattr(record, "pk", None))
