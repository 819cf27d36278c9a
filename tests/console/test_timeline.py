"""The topic timeline on the pages (console/ops/timeline.py, topic_pages.py): the bars
above the message browser follow its partition selector and range, link each bucket
to a seek by time, and say their interval and count; the topics page has the same
bars as a sparkline per row. Permissions as the pages have; no message content in
the charts; bad parameters are a message on the page, never a 500."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from html import unescape
from urllib.parse import unquote

import pytest
from django.core.cache import cache

from tests.streams.kafka.test_volume import produce

from .conftest import logged_in

pytestmark = pytest.mark.kafka_partitions(2)

SECRET = "do-not-chart-me"


def _bars(html: str) -> list[dict[str, str]]:
    return [dict(re.findall(r'([\w-]+)="([^"]*)"', tag))
            for tag in re.findall(r'<a class="ops-timeline-bar[^>]*>', html)]


def _recent() -> datetime:
    """40 minutes ago on a 2-minute boundary: the "last hour" range has 2-minute bars."""
    at = datetime.now(timezone.utc) - timedelta(minutes=40)
    return at.replace(minute=at.minute - at.minute % 2, second=0, microsecond=0)


def test_the_browser_shows_the_bars_of_its_partition_and_range(kafka, operator):
    cache.clear()
    topic, base = kafka.name("orders"), _recent()
    produce(topic, base, {0: [0.5, 1, 1.5, 9], 1: [1, 20]})
    client = logged_in(operator)

    page = client.get(f"/admin/ops/topics/{topic}/", {"span": "1h"})
    assert page.status_code == 200
    html = page.content.decode()
    assert html.index('id="timeline"') < html.index('id="browse-form"')  # above the browser
    chart = re.search(r'<svg[^>]*class="ops-timeline"[^>]*>', html).group(0)
    assert 'role="group"' in chart and "Message volume of" in chart  # a labelled group: its bars stay reachable
    bars = {b["data-start"]: b for b in _bars(html)}
    first = bars[f"{base:%Y-%m-%dT%H:%M:%S}"]
    assert first["data-count"] == "4"
    assert unescape(first["aria-label"]) == (f"{base:%Y-%m-%d %H:%M} to {base + timedelta(minutes=2):%Y-%m-%d %H:%M} "
                                             "UTC: 4 messages (partition 0: 3, partition 1: 1)")
    assert unquote(unescape(first["href"])) == f"?span=1h&seek=time&time={base:%Y-%m-%dT%H:%M:%S}"
    assert sum(int(b["data-count"]) for b in bars.values()) == 6
    caption = page.context["chart"]["caption"]
    assert caption.startswith("Messages per 2 min on all 2 partitions") and "(last hour): 6 in" in caption

    one = client.get(f"/admin/ops/topics/{topic}/", {"span": "1h", "partition": 1, "q": "x"}).content.decode()
    counts = {b["data-start"]: b["data-count"] for b in _bars(one)}
    assert counts[f"{base:%Y-%m-%dT%H:%M:%S}"] == "1" and sum(map(int, counts.values())) == 2
    assert "partition=1" in _bars(one)[0]["href"] and "q=x" in _bars(one)[0]["href"]  # the filters stay

    retained = client.get(f"/admin/ops/topics/{topic}/")  # the default range: what the topic retains
    assert "(all retained): 6 in" in retained.context["chart"]["caption"]


def test_a_seek_by_time_marks_its_bar_and_the_range_links_keep_the_browser(kafka, operator):
    cache.clear()
    topic, base = kafka.name("orders"), _recent()
    produce(topic, base, {0: [0.5, 5], 1: [5.5]})
    page = logged_in(operator).get(f"/admin/ops/topics/{topic}/", {
        "span": "1h", "seek": "time", "time": f"{base + timedelta(minutes=4):%Y-%m-%dT%H:%M:%S}"})
    selected = [b for b in _bars(page.content.decode()) if "selected" in b["class"]]
    assert [b["data-start"] for b in selected] == [f"{base + timedelta(minutes=4):%Y-%m-%dT%H:%M:%S}"]
    assert [r["m"].offset for r in page.context["rows"]] == [1, 0]  # the browser read from that time
    spans = {key: url for key, _label, url in page.context["chart"]["spans"]}
    assert "seek=time" in spans["6h"] and "span=6h" in spans["6h"]


def test_the_topics_page_has_a_sparkline_per_topic_without_contents(kafka, viewer):
    cache.clear()
    topic, base = kafka.name("orders"), _recent()
    produce(topic, base, {0: [1, 2, 30]})
    page = logged_in(viewer).get("/admin/ops/topics/")  # console.view_operations is enough here
    assert page.status_code == 200
    html = page.content.decode()
    cell = re.search(rf'<td class="ops-timeline-cell" data-topic="{topic}">(.*?)</td>', html, re.S).group(1)
    bars = _bars(cell)
    assert sum(int(b["data-count"]) for b in bars) == 3 and len(bars) <= 13
    assert all(unquote(unescape(b["href"])).startswith(f"/admin/ops/topics/{topic}/?seek=time&time=") for b in bars)
    assert "Messages per 5 min, last hour" in html
    assert "{}" not in cell and SECRET not in html
    six = logged_in(viewer).get("/admin/ops/topics/", {"span": "6h"})
    assert six.context["span"] == "6h" and "last 6 hours" in six.content.decode()

    # The browser and its chart still need console.view_topic_messages.
    assert logged_in(viewer).get(f"/admin/ops/topics/{topic}/").status_code == 403


def test_bad_parameters_are_a_message_not_a_500(kafka, operator):
    topic = kafka.name("orders")
    produce(topic, _recent(), {0: [1]})  # its partitions have leaders once it took a message
    client = logged_in(operator)
    odd = client.get(f"/admin/ops/topics/{topic}/", {"span": "a-year", "partition": "x"})
    assert odd.status_code == 200 and odd.context["span"] == "retained" and "svg" in odd.context["chart"]
    missing = client.get(f"/admin/ops/topics/{topic}/", {"partition": 9})  # said once, by the browser
    assert missing.status_code == 200 and "no partition 9" in missing.context["error"]
    assert "on all 2 partitions" in missing.context["chart"]["caption"]
    assert client.get("/admin/ops/topics/", {"span": "<script>"}).context["span"] == "1h"
