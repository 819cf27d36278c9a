"""Read-only views of the cluster for operators (topics, lag, recent messages).

Selectors: they never change offsets or data. Consumer-group lag comes from
the group's committed offsets and the partitions' high watermarks.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from .client import client_config
from .registry import consumers
from .topics import all_topics, topic_name

TIMEOUT = 5.0


@dataclass
class PartitionInfo:
    partition: int
    low: int
    high: int

    @property
    def messages(self) -> int:
        return self.high - self.low


@dataclass
class TopicInfo:
    name: str
    logical: str | None
    partitions: list[PartitionInfo] = field(default_factory=list)

    @property
    def messages(self) -> int:
        return sum(p.messages for p in self.partitions)

    @property
    def end_offset(self) -> int:
        return sum(p.high for p in self.partitions)


@dataclass
class GroupLag:
    consumer: str
    group: str
    state: str
    members: int
    topics: list[str]
    partitions: list[dict] = field(default_factory=list)

    @property
    def lag(self) -> int:
        return sum(p["lag"] for p in self.partitions)


@dataclass
class MessageView:
    topic: str
    partition: int
    offset: int
    timestamp: datetime | None
    key: str
    headers: list[tuple[str, str]]
    value: str
    size: int


def _probe() -> Consumer:
    return Consumer(client_config(**{
        "group.id": f"console-inspect-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    }))


def topics_overview(*, include_internal: bool = False) -> list[TopicInfo]:
    logical_by_name = {t.name: t.logical for t in all_topics()}
    probe = _probe()
    try:
        metadata = probe.list_topics(timeout=TIMEOUT)
        infos: list[TopicInfo] = []
        for name in sorted(metadata.topics):
            if name.startswith("__") and not include_internal:
                continue
            info = TopicInfo(name=name, logical=logical_by_name.get(name))
            for pid in sorted(metadata.topics[name].partitions):
                low, high = probe.get_watermark_offsets(TopicPartition(name, pid), timeout=TIMEOUT, cached=False)
                info.partitions.append(PartitionInfo(pid, low, high))
            infos.append(info)
        return infos
    finally:
        probe.close()


def consumer_lag() -> list[GroupLag]:
    """Lag of every registered consumer's group, per partition."""
    admin = AdminClient(client_config())
    specs = list(consumers().values())
    groups = [spec.group_id() for spec in specs]
    described = {}
    if groups:
        for group, future in admin.describe_consumer_groups(groups, request_timeout=TIMEOUT).items():
            try:
                described[group] = future.result()
            except Exception:
                described[group] = None
    probe = _probe()
    try:
        metadata = probe.list_topics(timeout=TIMEOUT)
        result: list[GroupLag] = []
        for spec in specs:
            group = spec.group_id()
            names = [topic_name(t) for t in spec.topics]
            desc = described.get(group)
            lag = GroupLag(
                consumer=spec.name, group=group,
                state=str(getattr(desc, "state", "unknown")).split(".")[-1].lower() if desc else "unknown",
                members=len(desc.members) if desc else 0, topics=names,
            )
            partitions = [
                TopicPartition(name, pid)
                for name in names if name in metadata.topics
                for pid in sorted(metadata.topics[name].partitions)
            ]
            committed: dict[tuple[str, int], int] = {}
            if partitions:
                request = [ConsumerGroupTopicPartitions(group, partitions)]
                try:
                    for _group, future in admin.list_consumer_group_offsets(request, request_timeout=TIMEOUT).items():
                        for tp in future.result().topic_partitions:
                            committed[(tp.topic, tp.partition)] = tp.offset
                except Exception:
                    pass
            for tp in partitions:
                low, high = probe.get_watermark_offsets(tp, timeout=TIMEOUT, cached=False)
                offset = committed.get((tp.topic, tp.partition), -1)
                start = offset if offset >= 0 else low
                lag.partitions.append({
                    "topic": tp.topic, "partition": tp.partition, "committed": offset if offset >= 0 else None,
                    "end": high, "lag": max(high - start, 0),
                })
            result.append(lag)
        return result
    finally:
        probe.close()


def _text(data: bytes | None, limit: int) -> str:
    if data is None:
        return ""
    return data[:limit].decode("utf-8", errors="replace") + ("…" if len(data) > limit else "")


def recent_messages(topic: str, *, limit: int = 50, partition: int | None = None,
                    max_value_chars: int = 2000) -> list[MessageView]:
    """The newest `limit` messages of a topic (spread over its partitions), newest first."""
    probe = _probe()
    try:
        metadata = probe.list_topics(topic, timeout=TIMEOUT)
        if topic not in metadata.topics or metadata.topics[topic].error is not None:
            raise LookupError(f"topic {topic!r} does not exist")
        pids = sorted(metadata.topics[topic].partitions)
        if partition is not None:
            pids = [p for p in pids if p == partition]
        assignments, remaining = [], set()
        for pid in pids:
            low, high = probe.get_watermark_offsets(TopicPartition(topic, pid), timeout=TIMEOUT, cached=False)
            if high > low:
                assignments.append(TopicPartition(topic, pid, max(low, high - limit)))
                remaining.add(pid)
        if not assignments:
            return []
        probe.assign(assignments)
        views: list[MessageView] = []
        deadline = time.monotonic() + TIMEOUT
        while remaining and time.monotonic() < deadline:
            for msg in probe.consume(num_messages=500, timeout=0.5):
                if msg.error() is not None:
                    if msg.error().code() == -191:  # _PARTITION_EOF
                        remaining.discard(msg.partition())
                    continue
                kind, ms = msg.timestamp()
                views.append(MessageView(
                    topic=topic, partition=msg.partition(), offset=msg.offset(),
                    timestamp=datetime.fromtimestamp(ms / 1000, tz=timezone.utc) if ms > 0 else None,
                    key=_text(msg.key(), 200),
                    headers=[(k, _text(v, 300)) for k, v in (msg.headers() or [])],
                    value=_text(msg.value(), max_value_chars), size=len(msg.value() or b""),
                ))
        views.sort(key=lambda v: (v.timestamp or datetime.min.replace(tzinfo=timezone.utc), v.offset), reverse=True)
        return views[:limit]
    finally:
        probe.close()
