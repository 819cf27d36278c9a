"""The message browser and the task list in a real browser (Playwright driving
Debian's Chromium, as tests/console/test_dashboard_browser.py does): an operator
finds a message just produced by its offset and by its time, opens it, and
retries a failed Celery task from the admin, whose audit entry then shows.
`make screenshots` saves messages.png, message.png and tasks.png into docs/images/."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest

from console.models import AuditEntry
from streams.kafka.producer import Outbound, produce_and_wait
from tests.conftest import wait_until
from tests.console.test_dashboard_browser import SCREENSHOTS
from tests.console.test_offsets_browser import log_in
from tests.quarantine.test_browser import browser, page  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser


def test_the_browser_finds_a_message_by_offset_and_by_time(page, live_server, kafka, operator):  # noqa: F811
    topic = kafka.name("orders")
    produce_and_wait([Outbound(topic, {"order_id": f"old-{i}", "amount": i}, key=f"k{i}") for i in range(30)])
    time.sleep(1.1)
    cut = datetime.now(timezone.utc)
    produce_and_wait([Outbound(topic, {"order_id": "just-produced", "amount": 99.5, "tags": ["a", "b"]},
                               key="wanted", headers=[("trace-id", b"t-123")])])
    log_in(page, operator)

    page.goto(f"/admin/ops/topics/{topic}/")
    page.check("input[name=seek][value=offset]")
    page.fill("input[name=offset]", "30")
    page.click("#browse-form input[type=submit]")
    page.wait_for_selector("#messages tr.ops-message")
    first = page.locator("#messages tr.ops-message").first
    assert first.get_attribute("data-offset") == "30"
    assert "just-produced" in first.inner_text() and "trace-id" in first.inner_text()

    page.goto(f"/admin/ops/topics/{topic}/")
    page.check("input[name=seek][value=time]")
    page.fill("input[name=time]", cut.strftime("%Y-%m-%dT%H:%M:%S.%f"))
    page.fill("input[name=q]", "just-produced")
    page.click("#browse-form input[type=submit]")
    page.wait_for_selector("#messages tr.ops-message")
    rows = page.locator("#messages tr.ops-message")
    assert rows.count() == 1 and rows.first.get_attribute("data-offset") == "30"

    page.goto(f"/admin/ops/topics/{topic}/?limit=12")
    page.wait_for_selector("#messages tr.ops-message")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "messages.png"), full_page=True)
    page.click("#older")
    page.wait_for_selector("#messages tr.ops-message")
    assert page.locator("#messages tr.ops-message").first.get_attribute("data-offset") == "18"

    page.goto(f"/admin/ops/topics/{topic}/0/30/")
    page.wait_for_selector("#value .nt")  # highlighted JSON keys
    assert json.loads(page.inner_text("#value"))["order_id"] == "just-produced"
    assert "t-123" in page.inner_text("#headers")
    page.screenshot(path=str(SCREENSHOTS / "message.png"), full_page=True)


def test_a_failed_task_retried_from_the_admin_succeeds_and_its_audit_shows(page, live_server, kafka, processes,  # noqa: F811
                                                                         operator, tmp_path):
    from django_celery_results.models import TaskResult

    from tests.console.celery_tasks import needs_file

    processes.celery_worker("--include", "tests.console.celery_tasks")
    marker = tmp_path / "input.txt"
    sent = needs_file.delay(str(marker), greeting="hi")
    failed = wait_until(lambda: TaskResult.objects.filter(task_id=sent.id, status="FAILURE").first(),
                        message="the task's FAILURE result", timeout=90)
    log_in(page, operator)
    page.goto("/admin/django_celery_results/taskresult/?status__exact=FAILURE")
    page.wait_for_selector("#result_list")
    assert sent.id in page.inner_text("#result_list")
    page.screenshot(path=str(SCREENSHOTS / "tasks.png"), full_page=True)

    marker.write_text("there")  # the operator fixes the cause, then retries
    page.goto(f"/admin/django_celery_results/taskresult/{failed.pk}/change/")
    page.click("a[href$='/retry/']")
    page.click("#content form input[type=submit]")
    page.wait_for_selector("ul.messagelist li.success")
    entry = wait_until(lambda: AuditEntry.objects.filter(
        action="task_retry", target=f"task:{sent.id}", outcome="succeeded").first(), message="the audit entry")
    new_id = entry.detail["new_task_id"]
    wait_until(lambda: TaskResult.objects.filter(task_id=new_id, status="SUCCESS").exists(), timeout=60,
               message="the retried task succeeded")
    assert TaskResult.objects.get(task_id=new_id).result == json.dumps("hi there")

    page.goto("/admin/console/auditentry/")
    assert f"task:{sent.id}" in page.inner_text("#result_list") and "task_retry" in page.inner_text("#result_list")
