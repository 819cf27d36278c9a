"""Celery for operators: what the workers and queues are doing (selectors), and
the two actions on a task, retry and revoke (services), each audited.

Task results live in PostgreSQL (django-celery-results, `CELERY_RESULT_BACKEND
= "django-db"`). The result row keeps `argsrepr`, a display string that Celery
cuts at 1,024 characters, so it cannot be sent again as it is; the worker
therefore also keeps the task's real arguments and queue in the row's `meta`
(console/celery_signals.py, connected to `task_prerun` in every worker
by console/celery.py), which is django-celery-results' documented hook
(`request.meta` is stored with the result). Retry sends exactly those.

The broker is Redis (kombu's Redis transport): a queue is a list, its
messages are JSON with the task's id and name in their headers, and a message
is pushed on the left and taken from the right.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import redis
from celery import states
from django.conf import settings
from django.db import transaction
from django_celery_results.models import TaskResult

from streams.kafka.client import describe

from ..audit import ActionError, ActionRefused, audit_record
from ..celery_signals import ARGUMENTS_KEY
from ..models import AuditEntry

logger = logging.getLogger(__name__)

RETRY_ACTION, REVOKE_ACTION = "task_retry", "task_revoke"
RETRYABLE_STATES = {states.FAILURE}
QUEUED_STATES = {states.PENDING, states.RECEIVED, states.RETRY}
# kombu's Redis transport keeps messages of priority 3, 6 and 9 in lists of their own.
_PRIORITY_SEP, _PRIORITY_STEPS = "\x06\x16", (3, 6, 9)
# How far from the head of a queue a revoke looks for the task's message.
REVOKE_SEARCH_DEPTH = 1000


def _app():
    from ..celery import app

    return app


# ------------------------------------------------------------------ selectors


def task_arguments(result: TaskResult) -> dict[str, Any] | None:
    """The task's real args, kwargs and queue, when its worker recorded them."""
    try:
        meta = json.loads(result.meta or "{}")
    except ValueError:
        return None
    stored = meta.get(ARGUMENTS_KEY) if isinstance(meta, dict) else None
    if not isinstance(stored, dict) or not isinstance(stored.get("args"), list) \
            or not isinstance(stored.get("kwargs"), dict):
        return None
    return stored


def task_runtime_seconds(result: TaskResult) -> float | None:
    if result.date_started and result.date_done and result.status in states.READY_STATES:
        return max((result.date_done - result.date_started).total_seconds(), 0.0)
    return None


def _broker() -> redis.Redis:
    timeout = settings.CELERY_INSPECT_TIMEOUT_SECONDS
    return redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=timeout,
                                socket_connect_timeout=timeout)


def _queue_keys(queue: str) -> list[str]:
    return [queue] + [f"{queue}{_PRIORITY_SEP}{p}" for p in _PRIORITY_STEPS]


def known_queues(extra: list[str] | None = None) -> list[str]:
    """The default queue, the configured ones, those routes name and those workers consume."""
    app = _app()
    names = {app.conf.task_default_queue or settings.CELERY_TASK_DEFAULT_QUEUE}
    for queue in app.conf.task_queues or []:
        names.add(getattr(queue, "name", queue))
    routes = app.conf.task_routes
    if isinstance(routes, dict):
        names.update(r["queue"] for r in routes.values() if isinstance(r, dict) and r.get("queue"))
    names.update(extra or [])
    return sorted(str(n) for n in names if n)


@dataclass
class QueuedTask:
    task_id: str
    task_name: str
    args: str
    kwargs: str
    eta: str | None
    queue: str


@dataclass
class QueueState:
    name: str
    length: int
    head: list[QueuedTask] = field(default_factory=list)


def _parse_message(raw: bytes, queue: str) -> QueuedTask | None:
    try:
        message = json.loads(raw)
        headers = message.get("headers") or {}
    except (ValueError, AttributeError):
        return None
    if not headers.get("id"):
        return None
    return QueuedTask(task_id=str(headers["id"]), task_name=str(headers.get("task", "")),
                      args=str(headers.get("argsrepr", "")), kwargs=str(headers.get("kwargsrepr", "")),
                      eta=headers.get("eta"), queue=queue)


def queue_states(queues: list[str], *, peek: int, client: redis.Redis | None = None) -> list[QueueState]:
    """LLEN of each queue (priority lists included) and its next `peek` messages, in two round trips."""
    client = client or _broker()
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        for key in _queue_keys(queue):
            pipe.llen(key)
    if peek > 0:
        for queue in queues:
            pipe.lrange(queue, -peek, -1)
    replies = pipe.execute()
    out = []
    keys_per_queue = len(_PRIORITY_STEPS) + 1
    for i, queue in enumerate(queues):
        length = sum(replies[i * keys_per_queue:(i + 1) * keys_per_queue])
        raws = replies[len(queues) * keys_per_queue + i] if peek > 0 else []
        head = [t for t in (_parse_message(raw, queue) for raw in reversed(raws)) if t]  # next to run first
        out.append(QueueState(name=queue, length=length, head=head))
    return out


@dataclass
class CeleryOverview:
    broker_up: bool
    broker_error: str = ""
    workers: list[dict[str, Any]] = field(default_factory=list)
    queues: list[QueueState] = field(default_factory=list)
    reserved: list[dict[str, Any]] = field(default_factory=list)


def celery_overview(*, timeout: float | None = None, peek: int | None = None) -> CeleryOverview:
    """Workers online (ping, then active/stats/queues/reserved from those that answered)
    and queue lengths. Bounded: a Redis check first (timeout), one `ping` that waits
    `timeout`, and inspections that stop as soon as every pinged worker replied."""
    timeout = settings.CELERY_INSPECT_TIMEOUT_SECONDS if timeout is None else timeout
    peek = settings.CELERY_QUEUE_PEEK if peek is None else peek
    client = _broker()
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        return CeleryOverview(broker_up=False, broker_error=describe(exc, limit=300))
    overview = CeleryOverview(broker_up=True)
    app = _app()
    consumed: list[str] = []
    try:
        pinged = app.control.inspect(timeout=timeout).ping() or {}
        if pinged:
            inspect = app.control.inspect(timeout=timeout, destination=list(pinged), limit=len(pinged))
            active, stats = inspect.active() or {}, inspect.stats() or {}
            queues, reserved = inspect.active_queues() or {}, inspect.reserved() or {}
            for name in sorted(pinged):
                worker_queues = [q.get("name") for q in queues.get(name, []) if q.get("name")]
                consumed += worker_queues
                pool = (stats.get(name) or {}).get("pool") or {}
                overview.workers.append({
                    "name": name, "active": active.get(name, []), "queues": worker_queues,
                    "concurrency": pool.get("max-concurrency"), "pid": (stats.get(name) or {}).get("pid"),
                    "processed": sum(((stats.get(name) or {}).get("total") or {}).values()),
                    "uptime": (stats.get(name) or {}).get("uptime"),
                })
                for task in reserved.get(name, []):
                    overview.reserved.append({**task, "worker": name})
    except Exception as exc:  # the broker went away between the checks: show what we have
        logger.warning("celery_inspect_failed error=%s", exc)
        overview.broker_error = describe(exc, limit=300)
    try:
        overview.queues = queue_states(known_queues(consumed), peek=peek, client=client)
    except redis.RedisError as exc:
        overview.broker_error = describe(exc, limit=300)
    finally:
        client.close()
    return overview


# ------------------------------------------------------------------- services


def task_retry(*, result: TaskResult, by: Any) -> str:
    """Send a failed task again: same name, args, kwargs and queue, a new id.
    A failure is retried once (the new task's own failure may be retried in turn),
    so a double click sends one task. Returns the new task's id."""
    target = f"task:{result.task_id}"
    try:
        with transaction.atomic():
            locked = TaskResult.objects.select_for_update().get(pk=result.pk)
            if locked.status not in RETRYABLE_STATES:
                raise ActionRefused(f"only a failed task can be retried; this one is {locked.status}")
            if not locked.task_name:
                raise ActionRefused("the task's name was not recorded")
            arguments = task_arguments(locked)
            if arguments is None:
                raise ActionRefused("the task's original arguments were not recorded (a worker without "
                                    "console's task_prerun hook ran it): it cannot be retried from here")
            earlier = AuditEntry.objects.filter(action=RETRY_ACTION, target=target,
                                                outcome=AuditEntry.Outcome.SUCCEEDED).first()
            if earlier is not None:
                raise ActionRefused(f"already retried as {earlier.detail.get('new_task_id')}")
            new_id = str(uuid.uuid4())
            queue = arguments.get("queue") or _app().conf.task_default_queue
            detail = {"task_name": locked.task_name, "new_task_id": new_id, "queue": queue,
                      "args": arguments["args"], "kwargs": arguments["kwargs"]}
            try:
                _app().send_task(locked.task_name, args=arguments["args"], kwargs=arguments["kwargs"],
                                 queue=queue, task_id=new_id)
            except Exception as exc:  # the broker refused or is away
                raise ActionError(f"the task could not be queued: {describe(exc, limit=None)}") from exc
            audit_record(by=by, action=RETRY_ACTION, target=target, outcome=AuditEntry.Outcome.SUCCEEDED,
                         detail=detail)
            return new_id
    except ActionError as exc:
        audit_record(by=by, action=RETRY_ACTION, target=target, outcome=exc.outcome,
                     detail={"task_name": result.task_name, "message": exc.message})
        raise


def _remove_from_queue(client: redis.Redis, queue: str, task_id: str) -> int:
    """LREM the task's message from the queue's next REVOKE_SEARCH_DEPTH messages (0 if a worker has it)."""
    removed = 0
    for key in _queue_keys(queue):
        for raw in client.lrange(key, -REVOKE_SEARCH_DEPTH, -1):
            task = _parse_message(raw, queue)
            if task and task.task_id == task_id:
                removed += client.lrem(key, 1, raw)
    return removed


def task_revoke(*, task_id: str, by: Any, queue: str | None = None, task_name: str = "") -> dict[str, Any]:
    """Revoke a task that has not run: its message is taken off the queue when it is
    still there, and every worker is told to drop it (a worker that reserved it, or
    holds it for a countdown/eta, marks it REVOKED). Refused for a finished task."""
    target = f"task:{task_id}"
    try:
        existing = TaskResult.objects.filter(task_id=task_id).first()
        if existing is not None and existing.status in states.READY_STATES:
            raise ActionRefused(f"the task has finished ({existing.status}): nothing to revoke")
        if existing is not None and existing.status == states.STARTED:
            raise ActionRefused("the task is running; revoke stops only tasks that have not started")
        queue = queue or None
        client = _broker()
        try:
            removed = _remove_from_queue(client, queue, task_id) if queue else 0
            _app().control.revoke(task_id)
        except Exception as exc:
            raise ActionError(f"the broker is unreachable: {describe(exc, limit=None)}") from exc
        finally:
            client.close()
        name = task_name or (existing.task_name if existing else "") or ""
        _app().backend.mark_as_revoked(task_id, f"revoked by {getattr(by, 'username', by)}")
        TaskResult.objects.filter(task_id=task_id, task_name__isnull=True).update(task_name=name[:255] or None)
        detail = {"task_name": name, "queue": queue, "removed_from_queue": removed}
        audit_record(by=by, action=REVOKE_ACTION, target=target, outcome=AuditEntry.Outcome.SUCCEEDED,
                     detail=detail)
        return detail
    except ActionError as exc:
        audit_record(by=by, action=REVOKE_ACTION, target=target, outcome=exc.outcome,
                     detail={"task_name": task_name, "queue": queue, "message": exc.message})
        raise
