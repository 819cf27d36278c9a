"""Celery in the admin, against the real Redis broker, PostgreSQL results and a
real worker on this test's private queue: failed tasks listed, retried by an
operator (audited), refused to a viewer, queued tasks revoked, the workers page."""

from __future__ import annotations

import re
import time

from django.urls import reverse
from django_celery_results.models import TaskResult

from console.models import AuditEntry
from tests.conftest import wait_until

from .conftest import logged_in

CHANGELIST = "admin:django_celery_results_taskresult_changelist"


def _result(task_id: str, status: str | None = None) -> TaskResult | None:
    rows = TaskResult.objects.filter(task_id=task_id)
    if status:
        rows = rows.filter(status=status)
    return rows.first()


def test_a_failed_task_is_listed_and_an_operator_retries_it(kafka, processes, operator, viewer, tmp_path):
    from tests.console.celery_tasks import needs_file

    worker = processes.celery_worker("--include", "tests.console.celery_tasks")
    marker = tmp_path / "input.txt"
    sent = needs_file.delay(str(marker), greeting="hi")
    failed = wait_until(lambda: _result(sent.id, "FAILURE"), message="the task's FAILURE result",
                        timeout=90)

    ops, view = logged_in(operator), logged_in(viewer)
    page = ops.get(reverse(CHANGELIST), {"status__exact": "FAILURE"}).content.decode()
    assert sent.id in page and "tests.console.needs_file" in page
    assert "retry_selected" in page  # the bulk action is offered to an operator

    change_url = reverse("admin:django_celery_results_taskresult_change", args=[failed.pk])
    detail = ops.get(change_url).content.decode()
    assert "FileNotFoundError" in detail  # the traceback
    assert kafka.celery_queue in detail and "&quot;hi&quot;" in detail  # queue and kwargs as sent
    assert "celery@" in detail  # the worker
    retry_url = reverse("admin:django_celery_results_taskresult_retry", args=[failed.pk])
    assert retry_url in detail

    # A viewer sees the task, but neither the button nor the action, and is refused if they post.
    assert sent.id in view.get(reverse(CHANGELIST)).content.decode()
    assert retry_url not in view.get(change_url).content.decode()
    assert "retry_selected" not in view.get(reverse(CHANGELIST)).content.decode()
    assert view.get(retry_url).status_code == 403
    assert view.post(retry_url).status_code == 403
    view.post(reverse(CHANGELIST), {"action": "retry_selected", "_selected_action": [failed.pk]})
    assert not AuditEntry.objects.filter(action="task_retry").exists()

    # The operator fixes the cause, confirms, and the task runs again with its arguments.
    marker.write_text("there")
    confirm = ops.get(retry_url).content.decode()
    assert "tests.console.needs_file" in confirm and "greeting" in confirm and kafka.celery_queue in confirm
    response = ops.post(retry_url)
    assert response.status_code == 302
    entry = AuditEntry.objects.get(action="task_retry", target=f"task:{sent.id}")
    assert entry.actor_name == "ops-operator" and entry.outcome == "succeeded"
    new_id = entry.detail["new_task_id"]
    done = wait_until(lambda: _result(new_id, "SUCCESS"), message="the retried task's SUCCESS", timeout=60)
    assert done.result == '"hi there"' and done.task_name == "tests.console.needs_file"

    # The audit shows, on the task and in the audit log; a second retry of the same failure is refused.
    assert new_id in ops.get(change_url).content.decode()
    log = ops.get(reverse("admin:console_auditentry_changelist")).content.decode()
    assert "task_retry" in log and f"task:{sent.id}" in log
    ops.post(retry_url)
    assert AuditEntry.objects.filter(action="task_retry", outcome="succeeded").count() == 1
    assert AuditEntry.objects.filter(action="task_retry", outcome="refused").count() == 1

    # The workers page shows the live worker on this test's queue, and links the beat schedules.
    started = time.monotonic()
    workers = ops.get(reverse("ops-celery"))
    assert workers.status_code == 200
    body = workers.content.decode()
    assert "Workers online: 1" in body and kafka.celery_queue in body
    assert reverse("admin:django_celery_beat_periodictask_changelist") in body
    assert time.monotonic() - started < 10
    assert worker.poll() is None


def test_a_failure_of_an_ignore_result_task_is_recorded(kafka, processes, operator):
    from tests.console.celery_tasks import fails_ignored

    processes.celery_worker("--include", "tests.console.celery_tasks")
    sent = fails_ignored.delay(7)
    failed = wait_until(lambda: _result(sent.id, "FAILURE"), message="the ignored task's failure", timeout=90)
    assert "file 7 is unreadable" in failed.result
    page = logged_in(operator).get(reverse(CHANGELIST), {"task_name": "tests.console.fails_ignored"})
    assert sent.id in page.content.decode()


def test_without_a_worker_the_page_answers_quickly_and_a_queued_task_is_revoked(kafka, operator, viewer,
                                                                                  transactional_db, tmp_path):
    from tests.console.celery_tasks import needs_file

    queued = needs_file.delay(str(tmp_path / "never"))
    ops = logged_in(operator)
    started = time.monotonic()
    page = ops.get(reverse("ops-celery"))
    elapsed = time.monotonic() - started
    body = page.content.decode()
    assert page.status_code == 200 and elapsed < 5, elapsed
    assert "No worker answered the ping" in body
    assert re.search(rf"{kafka.celery_queue}</strong></td><td class=\"queue-length\">1<", body)
    assert queued.id in body

    # A viewer sees the queue but no Revoke button, and is refused if they post.
    view = logged_in(viewer)
    assert 'value="Revoke"' not in view.get(reverse("ops-celery")).content.decode()
    assert view.post(reverse("ops-celery-revoke"), {"task_id": queued.id, "queue": kafka.celery_queue}
                     ).status_code == 403

    response = ops.post(reverse("ops-celery-revoke"), {"task_id": queued.id, "queue": kafka.celery_queue,
                                                       "task_name": "tests.console.needs_file"})
    assert response.status_code == 302
    after = ops.get(reverse("ops-celery")).content.decode()
    assert re.search(rf"{kafka.celery_queue}</strong></td><td class=\"queue-length\">0<", after)
    revoked = _result(queued.id)
    assert revoked.status == "REVOKED" and revoked.task_name == "tests.console.needs_file"
    entry = AuditEntry.objects.get(action="task_revoke", target=f"task:{queued.id}")
    assert entry.outcome == "succeeded" and entry.detail["removed_from_queue"] == 1
    # Revoking it again is refused: it has finished (REVOKED).
    ops.post(reverse("ops-celery-revoke"), {"task_id": queued.id, "queue": kafka.celery_queue})
    assert AuditEntry.objects.filter(action="task_revoke", outcome="refused").count() == 1


def test_the_workers_page_says_so_when_the_broker_is_down(operator, settings, transactional_db):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    started = time.monotonic()
    page = logged_in(operator).get(reverse("ops-celery"))
    assert page.status_code == 200 and time.monotonic() - started < 5
    assert "The broker (Redis) is unreachable" in page.content.decode()
