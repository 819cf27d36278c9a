"""The dashboard in a real browser (Playwright driving Debian's Chromium, as
tests/quarantine/test_browser.py does): it refreshes by itself and shows lag
falling as a real consumer catches up. `make screenshots` saves the pictures
into docs/images/ (dashboard.png, consumer.png)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from console.tasks import sample_lag
from streams.kafka.producer import Outbound, produce_and_wait
from tests.conftest import ROOT, committed, wait_until
from tests.quarantine.test_browser import browser, page  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR") or ROOT / ".run" / "screenshots")
PASSWORD = "dashboard-pass-123"


def test_the_dashboard_refreshes_and_shows_lag_falling(page, live_server, kafka, processes, operator,  # noqa: F811
                                                       settings):
    settings.CONSOLE_DASHBOARD_REFRESH_SECONDS = 1
    operator.set_password(PASSWORD)
    operator.save()
    produce_and_wait([Outbound(kafka.name("metrics"), {"id": 3, "val": float(i), "time": 1624378100 + i})
                      for i in range(40)])
    sample_lag()

    page.goto("/admin/login/")
    page.fill("#id_username", operator.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#ops-dashboard")
    row = 'tr[data-consumer="telemetry"]'
    assert page.get_attribute(row, "data-status") == "not started"
    assert page.inner_text(f"{row} td:nth-child(4)") == "40"

    consumer = processes.consumer("telemetry", "--batch-time", "50", CONSUMER_HEARTBEAT_SECONDS="0.5")
    wait_until(lambda: committed(kafka, f"{kafka.group_prefix}-telemetry", ["metrics"]) == (40, 40),
               message="telemetry caught up")
    sample_lag()
    # No reload: the page's own refresh brings the new state in.
    page.wait_for_selector(f'{row}[data-status="running"]', timeout=30_000)
    wait_until(lambda: page.inner_text(f"{row} td:nth-child(4)") == "0", timeout=15, message="lag 0 on the page")
    assert "Refreshed" in page.inner_text("#ops-dashboard-status")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

    page.click(f"{row} a")
    page.wait_for_selector("#heartbeats")
    assert f":{consumer.pid}" in page.inner_text("#heartbeats")
    page.screenshot(path=str(SCREENSHOTS / "consumer.png"), full_page=True)
