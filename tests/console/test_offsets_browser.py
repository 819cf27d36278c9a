"""Reset offsets in a real browser (Playwright driving Debian's Chromium, as
tests/console/test_dashboard_browser.py does): an operator runs the dry run, then
applies it; a viewer does not see the action. `make screenshots` saves
docs/images/offset-reset.png (the dry run)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from console.models import AuditEntry
from streams.kafka.registry import get_consumer
from tests.conftest import ROOT
from tests.quarantine.test_browser import browser, page  # noqa: F401 (fixtures)
from tests.streams.kafka.test_offset_reset import commit, kafka_positions, produce, rows

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR") or ROOT / ".run" / "screenshots")
PASSWORD = "offsets-pass-123"


def log_in(page, user) -> None:  # noqa: F811
    user.set_password(PASSWORD)
    user.save()
    page.goto("/admin/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def test_an_operator_resets_a_group_after_a_dry_run_and_a_viewer_does_not_see_it(  # noqa: F811
        browser, page, live_server, kafka, operator, viewer):
    from streams.kafka.models import ConsumerOffset

    spec = get_consumer("telemetry")
    metrics, group = kafka.name("metrics"), spec.group_id()
    produce(metrics, 0, 12)
    commit(group, {(metrics, 0): 12})
    ConsumerOffset.objects.create(group=group, topic=metrics, partition=0, next_offset=12)

    log_in(page, operator)
    page.goto("/admin/ops/consumers/telemetry/")
    page.select_option("#id_target", "after_offset")
    page.select_option("#id_topic", metrics)
    page.fill("#id_partition", "0")
    page.fill("#id_offset", "11")
    page.click("#offset-dry-run")
    page.wait_for_selector("#offset-plan")
    # Past offset 11 is 12, where the group already is: nothing moves. Try again with earliest.
    assert page.inner_text("#offset-skipped") == "0" and page.inner_text("#offset-replayed") == "0"
    page.select_option("#id_target", "earliest")
    page.fill("#id_partition", "")
    page.fill("#id_offset", "")
    page.click("#offset-dry-run")
    page.wait_for_selector("#offset-plan")
    row = f'#offset-plan tr[data-partition="{metrics}[0]"]'
    assert page.inner_text(f"{row} .offset-new") == "0"
    assert page.inner_text(f"{row} .offset-replayed") == "12"
    assert page.inner_text("#offset-replayed") == "12"
    assert "empty" in page.inner_text("#offset-group-state") or "dead" in page.inner_text("#offset-group-state")
    assert kafka_positions(group, metrics, 1) == [12]  # the dry run moved nothing
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "offset-reset.png"), full_page=True)

    page.click("#offset-apply")
    page.wait_for_selector("ul.messagelist li.success")
    assert f"Offsets of {group} reset to earliest on {metrics}" in page.inner_text("ul.messagelist")
    assert kafka_positions(group, metrics, 1) == [0] and rows(metrics) == {0: 0}
    assert "succeeded" in page.inner_text("#offset-resets")
    entry = AuditEntry.objects.get(action="offsets_reset")
    assert entry.outcome == "succeeded" and entry.actor_name == operator.username

    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
    try:
        other = context.new_page()
        log_in(other, viewer)
        other.goto("/admin/ops/consumers/telemetry/")
        other.wait_for_selector("#heartbeats")
        assert other.locator("#offset-reset-form").count() == 0
        assert "Reset offsets" not in other.content()
    finally:
        context.close()
