"""Read-only views of the cluster for operators (topics, their retention, lag); the
message browser's reads are browse.py.

Selectors: they never change offsets or data. Consumer-group lag comes from
the group's committed offsets and the partitions' high watermarks.

A partition the broker cannot answer for right now (no leader yet after the
topic was made, a topic being deleted, a broker restarting) is reported as such
with the broker's reason, never as an error of the whole view.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from .client import client_config, failure_code, failure_reason
from .registry import consumers
from .topics import all_topics, topic_name

TIMEOUT = 5.0


@dataclass
class PartitionInfo:
    partition: int
    low: int
    high: int
    error: str = ""  # why the broker did not give its watermarks (then low = high = 0)

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
    unavailable: list[dict] = field(default_factory=list)  # {"topic", "partition", "error"}: not in the lag

    @property
    def lag(self) -> int:
        return sum(p["lag"] for p in self.partitions)

    @property
    def lag_by_partition(self) -> dict[tuple[str, int], int]:
        return {(p["topic"], p["partition"]): p["lag"] for p in self.partitions}

    @property
    def every_partition(self) -> list[tuple[str, int]]:
        """The partitions of its topics, with a lag or not (unavailable)."""
        return [(p["topic"], p["partition"]) for p in [*self.partitions, *self.unavailable]]


def _probe() -> Consumer:
    return Consumer(client_config(**{
        "group.id": f"console-inspect-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    }))


# The cluster did not answer at all (rather than refusing one partition): asking
# about the next partitions would only wait TIMEOUT again for each.
UNREACHABLE = (KafkaError._TIMED_OUT, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN)


class Watermarks:
    """(low, high) of partitions, asked one at a time with `consumer`; the broker's reason
    instead for a partition it cannot answer for now. Once the cluster stops answering
    in time, the partitions left get that reason without another wait."""

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer
        self.unreachable = ""

    def __call__(self, tp: TopicPartition) -> tuple[int, int] | str:
        if self.unreachable:
            return self.unreachable
        try:
            return self.consumer.get_watermark_offsets(tp, timeout=TIMEOUT, cached=False)
        except KafkaException as exc:
            reason = failure_reason(exc)
            if failure_code(exc) in UNREACHABLE:
                self.unreachable = reason
            return reason


def topics_overview(*, include_internal: bool = False) -> list[TopicInfo]:
    logical_by_name = {t.name: t.logical for t in all_topics()}
    probe = _probe()
    watermarks = Watermarks(probe)
    try:
        metadata = probe.list_topics(timeout=TIMEOUT)
        infos: list[TopicInfo] = []
        for name in sorted(metadata.topics):
            if name.startswith("__") and not include_internal:
                continue
            info = TopicInfo(name=name, logical=logical_by_name.get(name))
            for pid in sorted(metadata.topics[name].partitions):
                marks = watermarks(TopicPartition(name, pid))
                info.partitions.append(PartitionInfo(pid, 0, 0, marks) if isinstance(marks, str)
                                       else PartitionInfo(pid, *marks))
            infos.append(info)
        return infos
    finally:
        probe.close()


RETENTION_KEYS = ("retention.ms", "retention.bytes", "cleanup.policy")


def topic_configs(names: list[str]) -> dict[str, dict[str, str]]:
    """Retention and cleanup policy of each topic (describe_configs); {} for a topic the
    broker did not describe in time."""
    if not names:
        return {}
    admin = AdminClient(client_config())
    found: dict[str, dict[str, str]] = {}
    futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, n) for n in names],
                                     request_timeout=TIMEOUT)
    for resource, future in futures.items():
        try:
            entries = future.result(timeout=TIMEOUT)
        except Exception:
            found[resource.name] = {}
            continue
        found[resource.name] = {k: entries[k].value for k in RETENTION_KEYS if k in entries}
    return found


def retention_text(config: dict[str, str]) -> str:
    """"7 days", "1.0 GB or 7 days", "compacted", "forever"."""
    parts = []
    if config.get("retention.bytes") not in (None, "-1"):
        parts.append(f"{int(config['retention.bytes']) / 1e9:.1f} GB")
    ms = config.get("retention.ms")
    if ms not in (None, "-1"):
        hours = int(ms) / 3_600_000
        parts.append(f"{hours / 24:g} days" if hours >= 24 else f"{hours:g} hours")
    text = " or ".join(parts) or ("forever" if config else "")
    if "compact" in config.get("cleanup.policy", ""):
        text = f"compacted{', ' + text if text and text != 'forever' else ''}"
    return text


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
    watermarks = Watermarks(probe)
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
                marks = watermarks(tp)
                if isinstance(marks, str):
                    lag.unavailable.append({"topic": tp.topic, "partition": tp.partition, "error": marks})
                    continue
                low, high = marks
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
