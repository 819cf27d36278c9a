"""Message volume over time, read from the brokers' time indexes: the timeline above
the message browser and the sparklines of the topics page (console/ops/timeline.py
asks and draws; console/ops/topic_pages.py shows them).

A probe asks, for one instant, the first offset of each partition whose timestamp is
at or after it (Consumer.offsets_for_times, the lookup the browser's seek by time
makes; the partition's end when no message is that late). The difference between the
probes at a bucket's two edges is the number of offsets in the bucket: its messages,
when a partition's timestamps do not go back in time (LogAppendTime, or CreateTime
from producers with the same clock); transaction markers count as well.

Bounded by design: one offsets_for_times call per bucket edge, batched over every
partition probed (over every topic on the topics page), so at most MAX_BUCKETS + 1
calls whatever the number of partitions (one more at an edge where the broker refused
some partitions, for those alone); probing goes from the newest edge back and
stops at a deadline, and the timeline then says which buckets it covers. No message
is read: the retained range's ends come from ListOffsets (the earliest and the
largest timestamp of each partition), which answers with timestamps, not records.
Selectors only: nothing here joins a group or commits. Imports no app.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from .browse import BrowseError, partition_ranges
from .client import client_config, failure_reason

MAX_BUCKETS = 60
PROBE_SECONDS = 4.0  # all the probes of one timeline (or of the topics page) together
RETRY_PAUSE = 0.2  # before asking again for partitions the broker refused at an edge
# Bucket widths, in seconds: a bucket starts on a multiple of its width (UTC), so edges
# read well and a refresh within one bucket asks for the same instants.
WIDTHS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
          86400, 172800, 604800, 2419200)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class VolumeError(RuntimeError):
    """The cluster could not answer the first probe (the broker's reason in the message)."""


@dataclass(frozen=True)
class Target:
    """One partition to probe, with its watermarks read before probing: every probe
    is clamped to [low, high], so a message appended meanwhile never makes a count negative."""

    topic: str
    partition: int
    low: int
    high: int


@dataclass(frozen=True)
class Bucket:
    start: datetime
    end: datetime
    counts: dict[int, int]  # partition -> offsets in [start, end)

    @property
    def count(self) -> int:
        return sum(self.counts.values())


@dataclass
class Timeline:
    topic: str
    partitions: list[int]
    since: datetime  # the first edge asked for
    until: datetime  # the last edge asked for
    width: timedelta
    buckets: list[Bucket] = field(default_factory=list)  # oldest first; only those both of whose edges answered
    calls: int = 0  # offsets_for_times calls made for it (shared with other topics on the topics page)
    cut: bool = False  # the deadline stopped probing: buckets before the first one are missing
    unavailable: dict[int, str] = field(default_factory=dict)  # partitions the broker did not answer for

    @property
    def total(self) -> int:
        return sum(b.count for b in self.buckets)

    @property
    def peak(self) -> int:
        return max([b.count for b in self.buckets] + [0])


def _ms(when: datetime) -> int:
    return int((when - EPOCH) / timedelta(milliseconds=1))


def _at(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def bucket_edges(since: datetime, until: datetime, *, max_buckets: int) -> list[datetime]:
    """Edges of at most `max_buckets` buckets of one width from the WIDTHS, aligned on
    multiples of it, the first at or before `since` and the last after `until`
    (or at it, when it is aligned)."""
    max_buckets = min(max(int(max_buckets), 1), MAX_BUCKETS)
    since_s, until_s = (since - EPOCH).total_seconds(), (until - EPOCH).total_seconds()
    until_s = max(until_s, since_s + 1)
    for width in WIDTHS:
        first = math.floor(since_s / width) * width
        count = max(math.ceil((until_s - first) / width), 1)
        if count <= max_buckets or width == WIDTHS[-1]:
            return [EPOCH + timedelta(seconds=first + i * width) for i in range(min(count, max_buckets) + 1)]
    raise AssertionError("unreachable")


def _consumer() -> Consumer:
    return Consumer(client_config(**{"group.id": f"console-volume-{uuid.uuid4().hex[:8]}",
                                     "enable.auto.commit": False}))


def probe_offsets(consumer: Consumer, targets: list[Target], edges: list[datetime], *,
                  latest: datetime | None = None, seconds: float = PROBE_SECONDS,
                  ) -> tuple[dict[datetime, dict[tuple[str, int], int]], int, dict[tuple[str, int], str]]:
    """Offsets of every target at each edge, newest edge first, one offsets_for_times call
    per edge (and one more for the partitions it refused, if any; a partition refused twice
    is left out of the later edges); an edge after `latest` (no message is stamped later;
    default now) needs no call: every partition is at its end there. Returns the offsets
    per answered edge, the calls made, and the targets the broker refused with its reason.
    VolumeError when the first call fails; a later failure or the deadline stops probing
    with the edges answered so far."""
    latest_ms = _ms(latest or datetime.now(timezone.utc))
    deadline = time.monotonic() + seconds
    answered: dict[datetime, dict[tuple[str, int], int]] = {}
    refused: dict[tuple[str, int], str] = {}
    calls = 0
    bounds = {(t.topic, t.partition): t for t in targets}
    for edge in sorted(edges, reverse=True):
        ms = _ms(edge)
        if ms > latest_ms:
            answered[edge] = {key: t.high for key, t in bounds.items()}
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            break
        asking, offsets = [t for t in targets if (t.topic, t.partition) not in refused], {}
        for attempt in range(2):  # partitions refused (a leader moving) are asked once more
            try:
                found = consumer.offsets_for_times([TopicPartition(t.topic, t.partition, ms) for t in asking],
                                                   timeout=max(deadline - time.monotonic(), 0.1))
            except KafkaException as exc:
                if calls == 0:
                    raise VolumeError(failure_reason(exc)) from exc
                return answered, calls, refused
            calls += 1
            again = []
            for tp in found:
                key, bound = (tp.topic, tp.partition), bounds[(tp.topic, tp.partition)]
                if tp.error is not None:
                    refused[key] = tp.error.str()
                    again.append(bound)
                    continue
                refused.pop(key, None)
                offsets[key] = bound.high if tp.offset < 0 else min(max(tp.offset, bound.low), bound.high)
            if not again or attempt or time.monotonic() + RETRY_PAUSE >= deadline:
                break
            time.sleep(RETRY_PAUSE)
            asking = again
        answered[edge] = offsets
    return answered, calls, refused


def _timeline(topic: str, targets: list[Target], edges: list[datetime], answered, calls: int,
              refused: dict[tuple[str, int], str]) -> Timeline:
    partitions = [t.partition for t in targets if t.topic == topic]
    timeline = Timeline(topic=topic, partitions=partitions, since=edges[0], until=edges[-1],
                        width=edges[1] - edges[0] if len(edges) > 1 else timedelta(0), calls=calls,
                        unavailable={p: why for (t, p), why in refused.items() if t == topic})
    shown = [p for p in partitions if p not in timeline.unavailable]
    for start, end in zip(edges, edges[1:]):
        if start not in answered or end not in answered:
            timeline.cut = True
            continue
        timeline.buckets.append(Bucket(start=start, end=end, counts={
            p: max(answered[end][(topic, p)] - answered[start][(topic, p)], 0) for p in shown}))
    return timeline


def _ranges(consumer: Consumer, topic: str, partition: int | None) -> list[Target]:
    ranges = partition_ranges(consumer, topic)
    if partition is not None:
        ranges = [r for r in ranges if r.partition == partition]
        if not ranges:
            raise BrowseError(f"topic {topic!r} has no partition {partition}")
    return [Target(topic, r.partition, r.low, r.high) for r in ranges]


def retained_span(targets: list[Target], *, seconds: float = PROBE_SECONDS) -> tuple[datetime, datetime] | None:
    """The timestamps of the earliest and the latest retained message over `targets` (two
    ListOffsets requests, no record read); None when they hold nothing."""
    wanted = [TopicPartition(t.topic, t.partition) for t in targets if t.high > t.low]
    if not wanted:
        return None
    admin = AdminClient(client_config())
    stamps: dict[str, list[int]] = {"first": [], "last": []}
    try:
        for name, spec in (("first", OffsetSpec.for_timestamp(0)), ("last", OffsetSpec.max_timestamp())):
            futures = admin.list_offsets({tp: spec for tp in wanted}, request_timeout=seconds)
            for future in futures.values():
                info = future.result(timeout=seconds)
                if info.offset >= 0 and info.timestamp >= 0:
                    stamps[name].append(info.timestamp)
    except KafkaException as exc:
        raise VolumeError(failure_reason(exc)) from exc
    if not stamps["first"]:
        return None
    return _at(min(stamps["first"])), _at(max(stamps["last"] or stamps["first"]))


def topic_timeline(topic: str, *, partition: int | None = None, since: datetime | None = None,
                   until: datetime | None = None, max_buckets: int = 30) -> Timeline:
    """Volume of `topic` (one partition, or all) over [since, until] (until: now). Without
    `since`, over what the partitions retain: from the earliest message's timestamp to
    now (or the latest message's, if it is later). BrowseError for an unknown topic or
    partition, VolumeError when the cluster does not answer."""
    now = datetime.now(timezone.utc)
    consumer = _consumer()
    try:
        try:
            targets = _ranges(consumer, topic, partition)
        except KafkaException as exc:
            raise VolumeError(failure_reason(exc)) from exc
        until, latest = until or now, now
        if since is None:
            span = retained_span(targets)
            if span is None:
                since = until - timedelta(hours=1)
            else:
                since, latest = span[0], max(now, span[1])
                until = max(until, span[1] + timedelta(milliseconds=1))
        edges = bucket_edges(since, until, max_buckets=max_buckets)
        answered, calls, refused = probe_offsets(consumer, targets, edges, latest=latest)
        return _timeline(topic, targets, edges, answered, calls, refused)
    finally:
        consumer.close()


def topics_timelines(targets: list[Target], *, since: datetime, until: datetime | None = None,
                     max_buckets: int = 12) -> dict[str, Timeline]:
    """Volume of several topics over the same buckets, probed together (the topics page:
    at most max_buckets + 1 calls for all its rows). VolumeError when the cluster does not answer."""
    edges = bucket_edges(since, until or datetime.now(timezone.utc), max_buckets=max_buckets)
    if not targets:
        return {}
    consumer = _consumer()
    try:
        answered, calls, refused = probe_offsets(consumer, targets, edges)
    finally:
        consumer.close()
    return {topic: _timeline(topic, targets, edges, answered, calls, refused)
            for topic in dict.fromkeys(t.topic for t in targets)}
