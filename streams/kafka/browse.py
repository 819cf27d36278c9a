"""The message browser's reads: pages of a topic's messages from a position, an
offset or a time, forward or backward, with filters; one message whole.

Selectors: a fresh consumer in a throwaway group with auto-commit off, assigned
(never subscribed) to the partitions it reads, so nothing here commits an
offset or joins a group.

A page is exact: it is defined by one position per partition, and reading goes
partition by partition, so the next page starts where this one ended on each
partition, even with filters that skip most messages. Across partitions the
page is an ordered merge by timestamp that takes a prefix of each partition's
matches, so paging never skips a message. A page stops scanning after
BROWSE_SCAN_LIMIT messages or BROWSE_SECONDS, and says so: its positions then
continue the scan.

Imports: confluent-kafka and this package's client config only.
"""

from __future__ import annotations

import heapq
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from .client import client_config, failure_reason
from .headers import DLQ_PREFIX

TIMEOUT = 5.0
BROWSE_SCAN_LIMIT = 20_000  # messages read per page at most, over all partitions
BROWSE_SECONDS = 5.0
MAX_LIMIT = 200
CHUNK = 500  # messages read per step when scanning backward


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    timestamp: datetime | None
    key: bytes | None
    headers: list[tuple[str, bytes]]
    value: bytes | None

    @property
    def size(self) -> int:
        return len(self.value or b"")

    @property
    def sort_ms(self) -> int:
        return int(self.timestamp.timestamp() * 1000) if self.timestamp else 0

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return (v or b"").decode("utf-8", "replace")
        return None

    @property
    def dead_letter(self) -> dict[str, str]:
        """The `x-dlq-*` headers as fields: reason, consumer, original-topic, ... (empty otherwise)."""
        return {k[len(DLQ_PREFIX):]: (v or b"").decode("utf-8", "replace")
                for k, v in self.headers if k.startswith(DLQ_PREFIX)}


@dataclass(frozen=True)
class Filters:
    key: str = ""  # the key contains this
    header: str = ""  # "name" (present) or "name=text" (its value contains text)
    text: str = ""  # the value contains this, case-insensitive

    def __bool__(self) -> bool:
        return bool(self.key or self.header or self.text)

    def match(self, message: Message) -> bool:
        if self.key and self.key not in (message.key or b"").decode("utf-8", "replace"):
            return False
        if self.header:
            name, _, wanted = self.header.partition("=")
            values = [(v or b"").decode("utf-8", "replace") for k, v in message.headers if k == name.strip()]
            if not values or (wanted and not any(wanted in v for v in values)):
                return False
        if self.text and self.text.casefold() not in (message.value or b"").decode("utf-8", "replace").casefold():
            return False
        return True


@dataclass
class PartitionRange:
    partition: int
    low: int
    high: int


@dataclass
class Page:
    topic: str
    direction: str  # "forward" (oldest first) or "backward" (newest first)
    messages: list[Message]
    start: dict[int, int]  # per partition: the first offset this page covers
    end: dict[int, int]  # per partition: the offset after the last one it covers
    partitions: list[PartitionRange]
    scanned: int = 0
    truncated: bool = False  # stopped by the scan limit or the time limit
    filters: Filters = field(default_factory=Filters)

    @property
    def has_older(self) -> bool:
        return any(self.start[p.partition] > p.low for p in self.partitions)

    @property
    def has_newer(self) -> bool:
        return any(self.end[p.partition] < p.high for p in self.partitions)


class BrowseError(ValueError):
    """A request the browser cannot answer: an unknown topic or partition, an offset out of
    range, or a cluster that cannot answer for the topic now (said with the broker's reason)."""


def _consumer() -> Consumer:
    return Consumer(client_config(**{
        "group.id": f"console-browse-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    }))


def _message(msg) -> Message:
    _kind, ms = msg.timestamp()
    return Message(
        topic=msg.topic(), partition=msg.partition(), offset=msg.offset(),
        timestamp=datetime.fromtimestamp(ms / 1000, tz=timezone.utc) if ms > 0 else None,
        key=msg.key(), headers=list(msg.headers() or []), value=msg.value(),
    )


LEGAL_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")


def partition_ranges(consumer: Consumer, topic: str) -> list[PartitionRange]:
    if not LEGAL_TOPIC.fullmatch(topic):  # Kafka's own rule; never sent to the broker otherwise
        raise BrowseError(f"topic {topic!r} does not exist (not a legal topic name)")
    try:
        metadata = consumer.list_topics(topic, timeout=TIMEOUT)
        info = metadata.topics.get(topic)
        if info is None or info.error is not None:
            raise BrowseError(f"topic {topic!r} does not exist")
        ranges = []
        for pid in sorted(info.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, pid), timeout=TIMEOUT, cached=False)
            ranges.append(PartitionRange(pid, low, high))
    except KafkaException as exc:  # the broker away, or a partition without a leader for now
        raise BrowseError(f"Kafka cannot answer for {topic!r} now ({failure_reason(exc)}); try again") from exc
    return ranges


def topic_ranges(topic: str) -> list[PartitionRange]:
    """Each partition of `topic` with its low and high watermarks; BrowseError if it does not exist."""
    consumer = _consumer()
    try:
        return partition_ranges(consumer, topic)
    finally:
        consumer.close()


def _read(consumer: Consumer, topic: str, partition: int, start: int, stop: int, *,
          budget: int, deadline: float) -> tuple[list[Message], int]:
    """The messages of [start, stop) on one partition, at most `budget` of them; returns
    them and the offset reading reached (stop when the range was read whole)."""
    if start >= stop or budget <= 0:
        return [], start
    consumer.assign([TopicPartition(topic, partition, start)])
    out: list[Message] = []
    reached = start
    try:
        while reached < stop and len(out) < budget and time.monotonic() < deadline:
            batch = consumer.consume(num_messages=min(CHUNK, budget - len(out)), timeout=0.5)
            if not batch:
                continue
            for msg in batch:
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        reached = stop  # nothing more up to the high watermark read at the start
                    continue
                if msg.offset() < start:  # fetched for an earlier assignment
                    continue
                if msg.offset() >= stop:
                    reached = stop
                    break
                out.append(_message(msg))
                reached = msg.offset() + 1
                if len(out) >= budget:
                    break
    finally:
        consumer.unassign()
    return out, reached


def _clamp(ranges: list[PartitionRange], positions: dict[int, int]) -> dict[int, int]:
    return {r.partition: min(max(positions.get(r.partition, r.low), r.low), r.high) for r in ranges}


def browse(topic: str, *, positions: dict[int, int] | None = None, direction: str = "backward",
           limit: int = 50, partition: int | None = None, filters: Filters | None = None) -> Page:
    """One page of `topic`: `limit` matching messages read from `positions` (per partition;
    missing partitions start at their end reading backward, at their start reading
    forward). `partition` restricts the page to one partition."""
    filters = filters or Filters()
    limit = min(max(int(limit), 1), MAX_LIMIT)
    if direction not in ("forward", "backward"):
        raise BrowseError("direction is forward or backward")
    consumer = _consumer()
    try:
        ranges = partition_ranges(consumer, topic)
        if partition is not None:
            ranges = [r for r in ranges if r.partition == partition]
            if not ranges:
                raise BrowseError(f"topic {topic!r} has no partition {partition}")
        default = {r.partition: (r.low if direction == "forward" else r.high) for r in ranges}
        pos = _clamp(ranges, {**default, **(positions or {})})
        deadline = time.monotonic() + BROWSE_SECONDS
        budget = BROWSE_SCAN_LIMIT
        found: dict[int, list[Message]] = {}
        reached: dict[int, int] = {}
        for r in ranges:
            matches, at = (_scan_forward if direction == "forward" else _scan_backward)(
                consumer, topic, r, pos[r.partition], limit=limit, filters=filters,
                budget=budget, deadline=deadline)
            budget -= matches.scanned
            found[r.partition], reached[r.partition] = matches.items, at
        taken = _merge(found, limit=limit, newest_first=direction == "backward")
        page = Page(topic=topic, direction=direction, messages=taken, start={}, end={}, partitions=ranges,
                    scanned=BROWSE_SCAN_LIMIT - budget, filters=filters,
                    truncated=budget <= 0 or time.monotonic() >= deadline)
        for r in ranges:
            p = r.partition
            mine = [m for m in taken if m.partition == p]
            left = len(found[p]) > len(mine)  # matches read but not shown: the next page starts at them
            if direction == "forward":
                page.start[p] = pos[p]
                page.end[p] = (found[p][len(mine)].offset if left else reached[p])
            else:
                page.end[p] = pos[p]
                # Untaken matches are older than the last one shown: the older page reaches them.
                page.start[p] = (mine[-1].offset if mine else pos[p]) if left else reached[p]
        return page
    finally:
        consumer.close()


@dataclass
class _Scan:
    items: list[Message]
    scanned: int


def _scan_forward(consumer, topic, r: PartitionRange, start: int, *, limit, filters, budget, deadline):
    items: list[Message] = []
    scanned, at = 0, start
    while at < r.high and len(items) < limit and scanned < budget and time.monotonic() < deadline:
        step = min(CHUNK if filters else limit - len(items), budget - scanned)
        read, at = _read(consumer, topic, r.partition, at, r.high, budget=step, deadline=deadline)
        scanned += len(read)
        for m in read:
            if filters.match(m):
                items.append(m)
                if len(items) >= limit:
                    at = m.offset + 1
                    break
        if not read:
            break
    return _Scan(items, scanned), at


def _scan_backward(consumer, topic, r: PartitionRange, end: int, *, limit, filters, budget, deadline):
    """Matches before `end`, newest first; returns them and the lowest offset scanned."""
    items: list[Message] = []
    scanned, at = 0, end
    while at > r.low and len(items) < limit and scanned < budget and time.monotonic() < deadline:
        step = min(CHUNK if filters else limit - len(items), budget - scanned)
        begin = max(r.low, at - step)
        read, reached = _read(consumer, topic, r.partition, begin, at, budget=at - begin, deadline=deadline)
        scanned += len(read)
        if reached < at:  # the time ran out inside the chunk: keep what is contiguous from the end only
            break
        chunk = [m for m in reversed(read) if filters.match(m)]
        for m in chunk:
            items.append(m)
            if len(items) >= limit:
                return _Scan(items, scanned), m.offset
        at = begin
    return _Scan(items, scanned), at


def _merge(found: dict[int, list[Message]], *, limit: int, newest_first: bool) -> list[Message]:
    """Take `limit` messages, a prefix of each partition's list, in timestamp order."""
    sign = -1 if newest_first else 1
    heads = [(sign * items[0].sort_ms, p, 0) for p, items in found.items() if items]
    heapq.heapify(heads)
    out: list[Message] = []
    while heads and len(out) < limit:
        _, p, i = heapq.heappop(heads)
        out.append(found[p][i])
        if i + 1 < len(found[p]):
            heapq.heappush(heads, (sign * found[p][i + 1].sort_ms, p, i + 1))
    return out


def offsets_for_time(topic: str, when: datetime) -> dict[int, int]:
    """Per partition, the first offset whose timestamp is at or after `when` (the end when none is)."""
    consumer = _consumer()
    try:
        ranges = partition_ranges(consumer, topic)
        ms = int(when.timestamp() * 1000)
        found = consumer.offsets_for_times([TopicPartition(topic, r.partition, ms) for r in ranges], timeout=TIMEOUT)
        high = {r.partition: r.high for r in ranges}
        return {tp.partition: (tp.offset if tp.offset >= 0 else high[tp.partition]) for tp in found}
    finally:
        consumer.close()


def _partition_range(consumer: Consumer, topic: str, partition: int) -> PartitionRange:
    for r in partition_ranges(consumer, topic):
        if r.partition == partition:
            return r
    raise BrowseError(f"topic {topic!r} has no partition {partition}")


def read_message(topic: str, partition: int, offset: int) -> Message:
    """One message, whole; BrowseError when the offset is not in the partition (any more)."""
    consumer = _consumer()
    try:
        r = _partition_range(consumer, topic, partition)
        if not r.low <= offset < r.high:
            raise BrowseError(f"offset {offset} is not in {topic}[{partition}], which holds {r.low}..{r.high - 1}"
                              if r.high > r.low else f"{topic}[{partition}] is empty")
        read, _ = _read(consumer, topic, partition, offset, offset + 1, budget=1,
                        deadline=time.monotonic() + TIMEOUT)
        if not read or read[0].offset != offset:
            raise BrowseError(f"no message at {topic}[{partition}]@{offset} (a transaction marker or compacted)")
        return read[0]
    finally:
        consumer.close()


def read_range(topic: str, partition: int, start: int, stop: int, *, limit: int) -> tuple[list[Message], int]:
    """Up to `limit` messages of [start, stop) on one partition, and the offset reading reached."""
    consumer = _consumer()
    try:
        r = _partition_range(consumer, topic, partition)
        start, stop = max(start, r.low), min(stop, r.high)
        return _read(consumer, topic, partition, start, stop, budget=limit,
                     deadline=time.monotonic() + BROWSE_SECONDS * 2)
    finally:
        consumer.close()
