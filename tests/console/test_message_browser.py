"""The message browser and the Kafka actions on its pages, on the real broker: exact
paging with filters, seeking by offset and by time, one message with its dead-letter
fields and quarantine record, producing a copy or a new message, and re-driving
dead letters from their topic (dry run first, each once, audited)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest
from django.contrib.auth.models import Permission
from confluent_kafka import Consumer, TopicPartition

from console.models import AuditEntry
from quarantine.models import QuarantineRecord
from streams.kafka import browse
from streams.kafka.client import client_config
from streams.kafka.producer import Outbound, produce_and_wait
from streams.kafka.topics import admin_client

from .conftest import logged_in

pytestmark = pytest.mark.services


def _all(topic: str) -> list:
    consumer = Consumer(client_config(**{"group.id": "test-browser-read", "enable.auto.commit": False}))
    try:
        ranges = browse.partition_ranges(consumer, topic)
        consumer.assign([TopicPartition(topic, r.partition, r.low) for r in ranges])
        want = sum(r.high - r.low for r in ranges)
        out, deadline = [], time.monotonic() + 20
        while len(out) < want and time.monotonic() < deadline:
            out += [m for m in consumer.consume(500, timeout=0.5) if m.error() is None]
        return out
    finally:
        consumer.close()


@pytest.mark.kafka_partitions(3)
def test_paging_is_exact_both_ways_with_and_without_filters(kafka, db):
    topic = kafka.name("orders")
    produce_and_wait([Outbound(topic, {"order_id": f"o-{i}", "kind": "big" if i % 5 == 0 else "small"},
                               key=f"k{i % 4}", headers=[("h", str(i % 3).encode())]) for i in range(240)])
    seen, page = [], browse.browse(topic, limit=25)
    assert not page.has_newer
    seen += page.messages
    while page.has_older:
        page = browse.browse(topic, positions=page.start, direction="backward", limit=25)
        assert len(page.messages) <= 25
        seen += page.messages
    assert sorted((m.partition, m.offset) for m in seen) == sorted(
        (p, o) for p in range(3) for o in range(browse.topic_ranges(topic)[p].high))
    assert len(seen) == 240

    wanted = browse.Filters(text='"BIG"', key="k0", header="h=1")
    found, page = [], browse.browse(topic, direction="forward", limit=7, filters=wanted)
    found += page.messages
    while page.has_newer:
        page = browse.browse(topic, positions=page.end, direction="forward", limit=7, filters=wanted)
        found += page.messages
    expected = {f"o-{i}" for i in range(240) if i % 5 == 0 and i % 4 == 0 and i % 3 == 1}
    assert sorted(json.loads(m.value)["order_id"] for m in found) == sorted(expected)


def test_seek_by_offset_and_by_time(kafka, operator):
    topic = kafka.name("orders")
    produce_and_wait([Outbound(topic, {"order_id": f"early-{i}"}) for i in range(10)])
    time.sleep(1.1)
    cut = datetime.now(timezone.utc)
    time.sleep(0.1)
    produce_and_wait([Outbound(topic, {"order_id": f"late-{i}"}) for i in range(5)])
    client = logged_in(operator)

    by_offset = client.get(f"/admin/ops/topics/{topic}/", {"seek": "offset", "partition": 0, "offset": 8, "limit": 3})
    assert by_offset.status_code == 200
    sizes = [len(r["m"].value) for r in by_offset.context["rows"]]
    assert by_offset.context["size_estimate"] == int(sum(sizes) / 3 * 15)  # no key, no headers; 15 retained
    assert [(r["m"].offset) for r in by_offset.context["rows"]] == [8, 9, 10]
    assert by_offset.context["page"].direction == "forward"

    by_time = client.get(f"/admin/ops/topics/{topic}/", {"seek": "time", "time": cut.strftime("%Y-%m-%dT%H:%M:%S.%f")})
    ids = [json.loads(r["m"].value)["order_id"] for r in by_time.context["rows"]]
    assert ids == [f"late-{i}" for i in range(5)]

    bad = client.get(f"/admin/ops/topics/{topic}/", {"seek": "time", "time": "yesterday"})
    assert bad.status_code == 200 and "not a date and time" in bad.context["error"]
    bad = client.get(f"/admin/ops/topics/{topic}/", {"pos": "0:x"})
    assert bad.status_code == 200 and "whole numbers" in bad.context["error"]
    assert client.get(f"/admin/ops/topics/{topic}/", {"partition": 7}).context["error"].endswith("no partition 7")
    # Browsing joined no group and committed nothing: no browser group exists on the broker.
    admin = admin_client()  # kept until its future is resolved
    groups = admin.list_consumer_groups(request_timeout=10).result(timeout=30).valid
    assert not [g.group_id for g in groups if g.group_id.startswith("console-browse")]


def test_message_page_dead_letter_fields_and_quarantine_link(kafka, operator):
    dlq, original = kafka.name("dead_letters"), kafka.name("metrics")
    produce_and_wait([Outbound(dlq, b'{"id": "x", "val": "not a number"}', key=b"sensor-1", headers=[
        ("source", b"test"), ("x-dlq-reason", b"val: must be a number"), ("x-dlq-consumer", b"telemetry"),
        ("x-dlq-original-topic", original.encode()), ("x-dlq-original-partition", b"0"),
        ("x-dlq-original-offset", b"41")])])
    record = QuarantineRecord.objects.create(source=QuarantineRecord.Source.MESSAGE, reason="val: must be a number",
                                             consumer="telemetry", topic=original, partition=0, offset=41)
    client = logged_in(operator)
    listing = client.get(f"/admin/ops/topics/{dlq}/")
    row = listing.context["rows"][0]
    assert row["record"] == record.pk and row["dlq"]["reason"] == "val: must be a number"
    assert f"quarantine #{record.pk}" in listing.content.decode()

    page = client.get(f"/admin/ops/topics/{dlq}/0/0/")
    html = page.content.decode()
    assert page.status_code == 200 and page.context["is_json"]
    assert 'id="dead-letter"' in html and "val: must be a number" in html and f"{original}[0]@41" in html
    assert f"/admin/quarantine/quarantinerecord/{record.pk}/change/" in html
    assert '<span class="nt">"val"</span>' in html  # highlighted JSON key
    assert client.get(f"/admin/ops/topics/{dlq}/0/5/").status_code == 404


def test_produce_new_and_copy_is_permissioned_and_audited(kafka, operator, viewer):
    topic, target = kafka.name("orders"), kafka.name("processed_orders")
    produce_and_wait([Outbound(topic, {"order_id": "o-1"}, key="k1", headers=[("trace", b"abc")])])
    client = logged_in(operator)

    form = client.get("/admin/ops/produce/", {"from": f"{topic}:0:0"})
    assert form.context["form"]["value"] == '{"order_id":"o-1"}' and form.context["form"]["headers"] == "trace: abc"
    done = client.post("/admin/ops/produce/", {"from": f"{topic}:0:0", "topic": target, "key": "k1",
                                               "headers": "trace: abc\nx-note: copied", "value": '{"order_id":"o-1"}'})
    assert done.status_code == 302 and done["Location"].endswith(f"/admin/ops/topics/{target}/0/0/")
    copied = _all(target)
    assert [(m.key(), m.value(), m.headers()) for m in copied] == [
        (b"k1", b'{"order_id":"o-1"}', [("trace", b"abc"), ("x-note", b"copied")])]
    entry = AuditEntry.objects.filter(action="message_produce", outcome="succeeded").get()
    assert entry.actor == operator and entry.target == f"topic:{target}"
    assert entry.detail["copied_from"] == f"{topic}:0:0" and entry.detail["offset"] == 0

    # A value that is not text is copied as base64 and sent as its exact bytes.
    produce_and_wait([Outbound(topic, b"\xff\x00binary\xfe", key="bin")])
    binary = client.get("/admin/ops/produce/", {"from": f"{topic}:0:1"}).context["form"]
    assert binary["encoding"] == "base64"
    client.post("/admin/ops/produce/", {"from": f"{topic}:0:1", "topic": target, "key": "bin",
                                        "value": binary["value"], "encoding": "base64"})
    assert _all(target)[-1].value() == b"\xff\x00binary\xfe"

    refused = client.post("/admin/ops/produce/", {"topic": "__consumer_offsets", "value": "x"}, follow=True)
    assert "internal topic" in refused.content.decode()
    refused = client.post("/admin/ops/produce/", {"topic": target, "headers": "no colon here", "value": "x"},
                          follow=True)
    assert "header line 1" in refused.content.decode()
    refused = client.post("/admin/ops/produce/", {"topic": "no-such-topic-here", "value": "x"}, follow=True)
    assert "does not exist" in refused.content.decode()
    assert client.post("/admin/ops/produce/", {"topic": "a\x00b", "value": "x"}).status_code == 200
    assert client.get("/admin/ops/topics/a%00b/redrive/").status_code == 200
    assert len(_all(target)) == 2
    assert AuditEntry.objects.filter(action="message_produce", outcome="refused").count() == 3  # bad headers: no call

    viewer.user_permissions.add(Permission.objects.get(codename="view_topic_messages"))
    watcher = logged_in(viewer)
    browsing = watcher.get(f"/admin/ops/topics/{topic}/")
    assert browsing.status_code == 200 and "Produce a message" not in browsing.content.decode()
    assert "Produce a copy" not in watcher.get(f"/admin/ops/topics/{topic}/0/0/").content.decode()
    assert watcher.get("/admin/ops/produce/").status_code == 403
    assert watcher.post("/admin/ops/produce/", {"topic": target, "value": "x"}).status_code == 403
    assert len(_all(target)) == 2


def _dead_letter(original: str, offset: int, *, consumer: str = "telemetry", replays: int | None = None,
                 value: bytes = b'{"id": "s", "val": 1.5, "time": 1624378100}') -> Outbound:
    headers = [("source", b"sensor")]
    if replays is not None:
        headers.append(("x-replay-count", str(replays).encode()))
    headers += [("x-dlq-reason", b"handler error: broker was down"), ("x-dlq-consumer", consumer.encode()),
                ("x-dlq-original-topic", original.encode()), ("x-dlq-original-partition", b"0"),
                ("x-dlq-original-offset", str(offset).encode())]
    return Outbound(None, value, key=f"s-{offset}".encode(), headers=headers)


def test_redrive_from_a_dead_letter_topic(kafka, operator, viewer, settings):
    dlq, original = kafka.name("dead_letters"), kafka.name("metrics")
    settings.QUARANTINE_MAX_REPLAYS = 3
    letters = [
        _dead_letter(original, 10),  # ready
        _dead_letter(original, 11),  # has a quarantine record
        _dead_letter("__consumer_offsets", 12),  # no usable origin
        _dead_letter(original, 13, replays=3),  # replayed too often
        _dead_letter(original, 14, replays=1),  # ready, second replay
    ]
    produce_and_wait([Outbound(dlq, m.value, key=m.key, headers=m.headers) for m in letters])
    record = QuarantineRecord.objects.create(source=QuarantineRecord.Source.MESSAGE, reason="x", consumer="telemetry",
                                             topic=original, partition=0, offset=11)
    client = logged_in(operator)
    dry = client.get(f"/admin/ops/topics/{dlq}/redrive/", {"partition": 0, "start": 0})
    plan = dry.context["plan"]
    assert [d.status for d in plan.letters] == ["ready", "quarantined", "no-origin", "replay-limit", "ready"]
    assert plan.letters[1].record_id == record.pk and plan.by_target == {original: 2}
    assert _all(original) == []  # the dry run published nothing

    stale = client.post(f"/admin/ops/topics/{dlq}/redrive/", {"partition": 0, "start": 0, "stop": plan.stop,
                                                              "expected": 3}, follow=True)
    assert "the dry run showed 3" in stale.content.decode() and _all(original) == []
    done = client.post(f"/admin/ops/topics/{dlq}/redrive/", {"partition": 0, "start": 0, "stop": plan.stop,
                                                             "expected": 2}, follow=True)
    assert "Re-drove 2 dead letter(s)" in done.content.decode()
    published = _all(original)
    assert sorted(m.key() for m in published) == [b"s-10", b"s-14"]
    for m in published:
        names = [k for k, _ in m.headers()]
        assert not [k for k in names if k.startswith("x-dlq-")] and ("source", b"sensor") in m.headers()
    assert {m.key(): dict(m.headers())["x-replay-count"] for m in published} == {b"s-10": b"1", b"s-14": b"2"}
    entry = AuditEntry.objects.get(action="dead_letter_redrive", outcome="succeeded")
    assert entry.actor == operator and entry.detail["offsets"] == [0, 4] and entry.target == f"topic:{dlq}"

    again = client.get(f"/admin/ops/topics/{dlq}/redrive/", {"partition": 0, "start": 0}).context["plan"]
    assert [d.status for d in again.letters] == ["redriven", "quarantined", "no-origin", "replay-limit", "redriven"]
    twice = client.post(f"/admin/ops/topics/{dlq}/redrive/", {"partition": 0, "start": 0, "stop": plan.stop},
                        follow=True)
    assert "nothing to re-drive" in twice.content.decode() and len(_all(original)) == 2

    assert "Not re-driven" in client.post(f"/admin/ops/topics/{original}/redrive/", {"partition": 0},
                                          follow=True).content.decode()
    watcher = logged_in(viewer)
    assert watcher.get(f"/admin/ops/topics/{dlq}/redrive/").status_code == 403


def test_topics_page_shows_retention_and_dead_letter_topics(kafka, operator):
    response = logged_in(operator).get("/admin/ops/topics/")
    rows = {row["info"].name: row for row in response.context["rows"]}
    assert rows[kafka.name("metrics")]["retention"]  # the broker's default, e.g. "7 days"
    assert "telemetry" in rows[kafka.name("dead_letters")]["writers"]
