"""The volume probes (streams/kafka/volume.py) on the real broker: messages stamped with
explicit timestamps land in exactly the buckets they belong to, per partition; one
partition alone; the retained range; one call per bucket edge whatever the number of
partitions and topics; the bound on buckets and the deadline."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from confluent_kafka import Producer

from streams.kafka import volume
from streams.kafka.browse import BrowseError, topic_ranges
from streams.kafka.client import client_config

pytestmark = pytest.mark.kafka_partitions(2)

# Minutes after BASE of each message, per partition, in order (the half-open buckets:
# 25.0 is in [25, 30), not in [20, 25)); -10 and 40 are outside [BASE, BASE + 30 min).
STAMPS = {0: [-10, 0.5, 1, 7, 7.2, 12, 29.9, 40], 1: [3, 14, 14.5, 16, 25, 25.1, 25.2]}
EXPECTED = [{0: 2, 1: 1}, {0: 2, 1: 0}, {0: 1, 1: 2}, {0: 0, 1: 1}, {0: 0, 1: 0}, {0: 1, 1: 3}]


@pytest.fixture
def base() -> datetime:
    """Three hours ago, on a 5-minute boundary (well inside the broker's retention)."""
    now = datetime.now(timezone.utc) - timedelta(hours=3)
    return now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)


def produce(topic: str, base: datetime, stamps: dict[int, list[float]] = STAMPS) -> None:
    producer = Producer(client_config())
    for partition, minutes in stamps.items():
        for m in minutes:
            when = base + timedelta(minutes=m)
            producer.produce(topic, b"{}", partition=partition, timestamp=int(when.timestamp() * 1000))
    assert producer.flush(30) == 0


def test_each_message_is_counted_in_its_bucket_and_partition(kafka, base):
    topic = kafka.name("orders")
    produce(topic, base)
    line = volume.topic_timeline(topic, since=base, until=base + timedelta(minutes=30), max_buckets=6)
    assert line.width == timedelta(minutes=5)
    assert [b.start for b in line.buckets] == [base + timedelta(minutes=5 * i) for i in range(6)]
    assert [b.counts for b in line.buckets] == EXPECTED
    assert [b.count for b in line.buckets] == [3, 2, 3, 1, 0, 4]
    assert line.partitions == [0, 1] and not line.cut and not line.unavailable
    assert line.calls == 7  # one per edge, both partitions in each


def test_one_partition_alone(kafka, base):
    topic = kafka.name("orders")
    produce(topic, base)
    line = volume.topic_timeline(topic, partition=1, since=base, until=base + timedelta(minutes=30), max_buckets=6)
    assert line.partitions == [1]
    assert [b.counts for b in line.buckets] == [{1: c[1]} for c in EXPECTED]
    with pytest.raises(BrowseError, match="no partition 5"):
        volume.topic_timeline(topic, partition=5)
    with pytest.raises(BrowseError, match="does not exist"):
        volume.topic_timeline(f"{topic}-missing")


def test_the_retained_range_covers_every_message(kafka, base):
    topic = kafka.name("orders")
    produce(topic, base)
    line = volume.topic_timeline(topic, max_buckets=30)
    assert line.buckets[0].start <= base - timedelta(minutes=10) < line.buckets[0].end
    assert line.buckets[-1].end > datetime.now(timezone.utc) - timedelta(seconds=1)
    assert line.total == 15 and len(line.buckets) <= 30 and line.calls <= 31 and not line.cut

    empty = volume.topic_timeline(kafka.name("metrics"), max_buckets=12)  # nothing retained: the last hour
    assert empty.total == 0 and empty.buckets and empty.until - empty.since >= timedelta(hours=1)


def test_every_topic_of_the_topics_page_shares_each_probe(kafka, base):
    orders, metrics = kafka.name("orders"), kafka.name("metrics")
    produce(orders, base)
    produce(metrics, base, {0: [1, 2], 1: [26]})
    targets = [volume.Target(t, r.partition, r.low, r.high) for t in (orders, metrics) for r in topic_ranges(t)]
    lines = volume.topics_timelines(targets, since=base, until=base + timedelta(minutes=30), max_buckets=6)
    assert [b.counts for b in lines[orders].buckets] == EXPECTED
    assert [b.count for b in lines[metrics].buckets] == [2, 0, 0, 0, 0, 1]
    assert lines[orders].calls == lines[metrics].calls == 7  # 7 calls for both topics, not 7 each


def test_probes_are_bounded_in_calls_and_time(kafka, base):
    topic = kafka.name("orders")
    produce(topic, base)
    wide = volume.topic_timeline(topic, since=base - timedelta(days=6), max_buckets=10_000)
    assert len(wide.buckets) <= volume.MAX_BUCKETS and wide.calls <= volume.MAX_BUCKETS + 1
    assert wide.total == 15

    targets = [volume.Target(topic, r.partition, r.low, r.high) for r in topic_ranges(topic)]
    edges = volume.bucket_edges(base, base + timedelta(minutes=30), max_buckets=6)
    consumer = volume._consumer()
    try:
        answered, calls, _ = volume.probe_offsets(consumer, targets, edges, seconds=0)
    finally:
        consumer.close()
    assert calls == 0 and answered == {}  # the deadline passed before the first call


def test_bucket_edges_are_aligned_and_bounded():
    since = datetime(2026, 12, 1, 10, 3, 7, tzinfo=timezone.utc)
    edges = volume.bucket_edges(since, since + timedelta(hours=1), max_buckets=13)
    assert edges[0] == datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc) and edges[1] - edges[0] == timedelta(minutes=5)
    assert edges[-1] >= since + timedelta(hours=1) and len(edges) - 1 <= 13
    assert len(volume.bucket_edges(since, since + timedelta(days=400), max_buckets=500)) - 1 <= volume.MAX_BUCKETS
    one = volume.bucket_edges(since, since, max_buckets=5)  # an empty range still has a bucket
    assert len(one) == 2 and one[0] <= since < one[1]
