"""Celery signal handlers of the console, connected by console/celery.py in
every process that loads the Celery app (workers included). No model imports:
this loads before Django's apps are ready."""

from __future__ import annotations

from typing import Any

# The key in a task result's `meta` (django-celery-results stores `request.meta`
# with the result) under which the worker keeps the task's real arguments.
ARGUMENTS_KEY = "console_arguments"


def remember_arguments(sender: Any = None, task_id: str | None = None, task: Any = None, args: Any = None,
                       kwargs: Any = None, **_: Any) -> None:
    """`task_prerun`: keep the real args, kwargs and queue with the result, since the
    row's `task_args` is Celery's argsrepr (a display string, cut at 1,024 characters)
    and a retry must send the arguments exactly."""
    request = getattr(task, "request", None)
    if request is None:
        return
    delivery = getattr(request, "delivery_info", None) or {}
    meta = dict(getattr(request, "meta", None) or {})
    meta[ARGUMENTS_KEY] = {"args": list(args or []), "kwargs": dict(kwargs or {}),
                           "queue": delivery.get("routing_key") or None}
    request.meta = meta


def connect_worker_signals() -> None:
    from celery.signals import before_task_publish, task_postrun, task_prerun

    from .tracing import enter_task_context, inject_task_context, leave_task_context

    task_prerun.connect(remember_arguments, dispatch_uid="console_remember_arguments", weak=False)
    # The trace context travels in a task's headers (console/tracing.py).
    before_task_publish.connect(inject_task_context, dispatch_uid="console_trace_publish", weak=False)
    task_prerun.connect(enter_task_context, dispatch_uid="console_trace_prerun", weak=False)
    task_postrun.connect(leave_task_context, dispatch_uid="console_trace_postrun", weak=False)
