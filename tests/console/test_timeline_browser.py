"""The topic timeline in a real browser (Playwright driving Debian's Chromium, as
tests/console/test_message_browser.py does): clicking a bar seeks the message browser to
the bar's start, so the listed messages begin in the bar's interval. `make screenshots`
saves timeline.png into docs/images/."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from confluent_kafka import Producer
from django.core.cache import cache

from streams.kafka.client import client_config
from tests.console.test_dashboard_browser import SCREENSHOTS
from tests.console.test_offsets_browser import log_in
from tests.quarantine.test_browser import browser, page  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.kafka_partitions(2)]


def _traffic(topic: str, base: datetime, bars: int) -> tuple[dict[int, list[str]], list[datetime]]:
    """A day's shape in miniature: bar k of 2 minutes gets a varying number of orders,
    stamped inside it, alternating partitions. Returns the order ids of each bar, and every stamp."""
    producer = Producer(client_config())
    ids: dict[int, list[str]] = {}
    stamps: list[datetime] = []
    for k in range(bars):
        count = 2 + (k * 7) % 11
        for j in range(count):
            when = base + timedelta(minutes=2 * k, seconds=(j + 1) * 100 / (count + 1))
            order = {"order_id": f"o-{k:02}-{j:02}", "amount": round(10 + k * 1.5 + j, 2)}
            producer.produce(topic, json.dumps(order).encode(), key=f"c{j % 5}", partition=j % 2,
                             timestamp=int(when.timestamp() * 1000))
            ids.setdefault(k, []).append(order["order_id"])
            stamps.append(when)
    assert producer.flush(30) == 0
    return ids, stamps


def test_clicking_a_bar_seeks_the_browser_to_its_time(page, live_server, kafka, operator):  # noqa: F811
    cache.clear()
    topic = kafka.name("orders")
    now = datetime.now(timezone.utc)
    base = (now - timedelta(minutes=58)).replace(second=0, microsecond=0)
    base -= timedelta(minutes=base.minute % 2)
    ids, stamps = _traffic(topic, base, bars=27)
    log_in(page, operator)

    page.goto(f"/admin/ops/topics/{topic}/?span=1h&limit=10")
    page.wait_for_selector("svg.ops-timeline a.ops-timeline-bar")
    assert "(last hour)" in page.inner_text("#timeline-caption")
    start = base + timedelta(minutes=2 * 9)
    bar = page.locator(f'a.ops-timeline-bar[data-start="{start:%Y-%m-%dT%H:%M:%S}"]')
    assert bar.get_attribute("data-count") == str(len(ids[9])), page.inner_text("#timeline-caption")
    assert bar.get_attribute("aria-label").startswith(f"{start:%Y-%m-%d %H:%M} to ")

    bar.click()
    page.wait_for_url("**seek=time**")
    page.wait_for_selector("#messages tr.ops-message")
    rows = page.locator("#messages tr.ops-message")
    times = [datetime.fromisoformat(rows.nth(i).locator("td").nth(2).inner_text() + "+00:00")
             for i in range(rows.count())]
    assert start <= times[0] < start + timedelta(minutes=2)  # the list starts in the bar's interval
    assert times == sorted(times) and all(t >= start for t in times)
    assert f'"{ids[9][0]}"' in rows.first.inner_text()  # the bar's first order, oldest first
    assert page.input_value("input[name=time]") == f"{start:%Y-%m-%dT%H:%M:%S}"
    assert "selected" in page.locator("a.ops-timeline-bar.selected").get_attribute("class")
    assert page.locator("a.ops-timeline-bar.selected").get_attribute("data-start") == f"{start:%Y-%m-%dT%H:%M:%S}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "timeline.png"), full_page=True)

    page.select_option("select[name=partition]", "1")  # the chart follows the partition selector
    page.click("#browse-form input[type=submit]")
    page.wait_for_selector("#messages tr.ops-message")
    assert "on partition 1" in page.inner_text("#timeline-caption")
    one = page.locator(f'a.ops-timeline-bar[data-start="{start:%Y-%m-%dT%H:%M:%S}"]')
    assert one.get_attribute("data-count") == str(len(ids[9]) // 2)

    # The topics page: the same volume as a sparkline on the topic's row, whose bars seek the browser too.
    page.goto("/admin/ops/topics/")
    spark = page.locator(f'td.ops-timeline-cell[data-topic="{topic}"] a.ops-timeline-bar')
    since = datetime.fromisoformat(spark.first.get_attribute("data-start") + "+00:00")
    assert sum(int(spark.nth(i).get_attribute("data-count")) for i in range(spark.count())) == \
        len([t for t in stamps if t >= since])
    spark_start = datetime.fromisoformat(spark.nth(4).get_attribute("data-start") + "+00:00")
    spark.nth(4).click()
    page.wait_for_url("**seek=time**")
    page.wait_for_selector("#messages tr.ops-message")
    first = datetime.fromisoformat(page.locator("#messages tr.ops-message").first.locator("td").nth(2).inner_text()
                                   + "+00:00")
    assert spark_start <= first < spark_start + timedelta(minutes=5)
