"""The pipeline map in a real browser (Playwright driving Debian's Chromium, as
tests/console/test_dashboard_browser.py does): every registered consumer and topic on
it, a group's members as real `run_consumer` processes report them, the consumer's node
turning red by the map's own refresh once its processes stop, and a click on a node
opening its page. `make screenshots` saves the picture into docs/images/map.png."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from console.tasks import sample_lag
from streams.kafka.producer import Outbound, produce_and_wait
from streams.kafka.registry import consumers
from tests.conftest import committed, wait_until
from tests.quarantine.test_browser import browser, page  # noqa: F401 (fixtures)

from .test_dashboard_browser import SCREENSHOTS

pytestmark = pytest.mark.browser

PASSWORD = "map-pass-123"


def _node(name: str) -> str:
    return f'g.map-node[data-node="{name}"]'


def test_the_map_shows_every_consumer_and_topic_and_turns_a_stopped_consumer_red(  # noqa: F811
        page, live_server, kafka, processes, operator, settings):
    settings.CONSOLE_DASHBOARD_REFRESH_SECONDS = 1
    operator.set_password(PASSWORD)
    operator.save()
    produce_and_wait([Outbound(kafka.name("metrics"), {"id": 5, "val": float(i), "time": 1624378100 + i})
                      for i in range(60)])
    sample_lag()
    members = [processes.consumer("telemetry", "--batch-time", "50", "--instance-id", str(n),
                                  CONSUMER_HEARTBEAT_SECONDS="0.5") for n in (1, 2)]
    wait_until(lambda: committed(kafka, f"{kafka.group_prefix}-telemetry", ["metrics"]) == (60, 60),
               message="telemetry caught up")
    sample_lag()

    page.goto("/admin/login/")
    page.fill("#id_username", operator.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.click("#ops-map-link")  # the dashboard links to the map
    page.wait_for_selector("#pipeline-map-svg")
    for name in consumers():
        assert page.locator(_node(f"consumer:{name}")).count() == 1, name
    for logical in django_settings.KAFKA_TOPICS:
        assert page.locator(_node(f"topic:{logical}")).count() == 1, logical
    telemetry = _node("consumer:telemetry")
    page.wait_for_selector(f'{telemetry}[data-state="running"][data-red="0"]', timeout=30_000)
    wait_until(lambda: page.locator(f"{telemetry} .map-member").count() == 2, timeout=20,
               message="both members on the telemetry node")
    members_text = page.text_content(telemetry)
    assert "1 · " in members_text and "2 · " in members_text  # each by its instance id, with its partitions
    page.set_viewport_size({"width": 1920, "height": 1100})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "map.png"), full_page=True)

    for member in members:
        processes.stop(member)  # SIGTERM: each says "stopped" in its last heartbeat
    # No reload: the map's own refresh turns the node red.
    page.wait_for_selector(f'{telemetry}[data-state="stopped"][data-red="1"]', timeout=30_000)
    assert "Refreshed" in page.inner_text("#pipeline-map-status")
    assert page.locator(f'{_node("consumer:orders")}[data-red="0"]').count() == 1

    page.click(telemetry)
    page.wait_for_selector("#heartbeats")
    assert page.url.endswith("/admin/ops/consumers/telemetry/")
