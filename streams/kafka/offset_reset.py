"""Resetting or skipping a consumer group's offsets: a dry run, then the move.

`plan_reset()` is the dry run. For each partition of the group's topics (or the
one named) it reads the committed offset, the stored position of a consumer
with `offsets_in_db`, the low and high watermarks, and resolves the target
(TARGETS: the low watermark, the high one, the first offset at or after a time
by `offsets_for_times`, or one past a message still kept). Each row says how
many offsets the consumer would skip or read again.

`apply_reset()` moves the group. Kafka lets an admin commit a group's offsets
only when the group has no member, so the move is refused unless the group is
`Empty` or `Dead` (never used), and Kafka refuses it itself (UNKNOWN_MEMBER_ID)
if a member joins meanwhile. For a consumer with `offsets_in_db`, the runtime
starts each partition at the larger of Kafka's committed offset and the
position stored in `streams_consumeroffset` (runtime.py, offsets.py), so a
move backwards would be ignored if only Kafka were told: the rows are set to
the same new position (the next offset to read, as `offsets.record()` stores),
in one database transaction that commits only after Kafka accepted the new
offsets. The rows are locked meanwhile, and `offsets.positions()` reads them
`FOR SHARE`, so a consumer that starts during the move waits for its end and
reads the new positions.

A move also refuses when the positions changed since the dry run the operator
confirmed (`expected`), so what was shown is what moves. The platform writes
no audit entry; the console's view does (console/ops/offsets.py).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from django.db import connection, transaction

from . import offsets
from .client import client_config, describe, failure_reason
from .models import ConsumerOffset
from .registry import ConsumerSpec
from .topics import topic_name

logger = logging.getLogger(__name__)

TIMEOUT = 10.0
EARLIEST, LATEST, TIMESTAMP, AFTER_OFFSET = "earliest", "latest", "timestamp", "after_offset"
TARGETS = {
    EARLIEST: "earliest (the oldest message kept)",
    LATEST: "latest (skip everything not yet read)",
    TIMESTAMP: "a timestamp (the first message at or after it)",
    AFTER_OFFSET: "one past an offset (skip a message on one partition)",
}
# What the coordinator answers an admin's commit to a group with members (classic and KIP-848 groups).
_GROUP_ACTIVE_ERRORS = {"UNKNOWN_MEMBER_ID", "REBALANCE_IN_PROGRESS", "ILLEGAL_GENERATION", "STALE_MEMBER_EPOCH"}
# Group states in which Kafka accepts an admin's offsets: no member.
INACTIVE_STATES = {"empty", "dead"}
_TABLE = ConsumerOffset._meta.db_table


class OffsetResetError(Exception):
    """The reset could not be done (Kafka or PostgreSQL failed); the message is for the operator."""

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class ResetRefused(OffsetResetError):
    """The reset is not allowed now (the group is active, or moved since the dry run)."""


class InvalidReset(ResetRefused):
    """The request itself is wrong: unknown partition, offset out of range, bad timestamp."""


@dataclass(frozen=True)
class ResetRequest:
    target: str
    topic: str | None = None  # a Kafka topic name of the consumer's, or None: all of them
    partition: int | None = None  # with `topic`; None: every partition
    timestamp: datetime | None = None  # TIMESTAMP
    offset: int | None = None  # AFTER_OFFSET: the message to step over

    def describe(self) -> str:
        where = ""
        if self.topic is not None:
            where = f" on {self.topic}" + (f"[{self.partition}]" if self.partition is not None else "")
        if self.target == TIMESTAMP and self.timestamp is not None:
            return f"to {self.timestamp.isoformat()}{where}"
        if self.target == AFTER_OFFSET:
            return f"past offset {self.offset}{where}"
        return f"to {self.target}{where}"

    def as_detail(self) -> dict[str, Any]:
        return {"target": self.target, "topic": self.topic, "partition": self.partition,
                "timestamp": self.timestamp.isoformat() if self.timestamp else None, "offset": self.offset}


@dataclass
class PartitionMove:
    topic: str
    partition: int
    committed: int | None  # Kafka's committed offset; None: never committed
    stored: int | None  # offsets_in_db: the position in PostgreSQL; None: none stored
    low: int
    high: int
    new: int

    @property
    def resumes_at(self) -> int | None:
        """Where a consumer started now would begin: the larger of Kafka's and PostgreSQL's
        positions (runtime.py), the earliest kept message if neither is set or it was deleted."""
        known = [p for p in (self.committed, self.stored) if p is not None]
        if not known:
            return None
        position = max(known)
        # Out of range (deleted by retention, or past the end of a topic made anew): the
        # consumer's auto.offset.reset, earliest, starts it at the low watermark.
        return position if self.low <= position <= self.high else self.low

    @property
    def current(self) -> int:
        return self.resumes_at if self.resumes_at is not None else self.low

    @property
    def skipped(self) -> int:
        return max(self.new - self.current, 0)

    @property
    def replayed(self) -> int:
        return max(self.current - self.new, 0)

    def as_detail(self) -> dict[str, Any]:
        return {**asdict(self), "from": self.current, "skipped": self.skipped, "replayed": self.replayed}


@dataclass
class ResetPlan:
    consumer: str
    group: str
    state: str  # the group's state, lower case: empty, dead, stable, preparingrebalance, ...
    members: int
    offsets_in_db: bool
    request: ResetRequest
    moves: list[PartitionMove] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.state not in INACTIVE_STATES or self.members > 0

    @property
    def skipped(self) -> int:
        return sum(m.skipped for m in self.moves)

    @property
    def replayed(self) -> int:
        return sum(m.replayed for m in self.moves)

    def positions(self) -> list[list[Any]]:
        """What the plan moves from, per partition: compared before the move (`expected`)."""
        return [[m.topic, m.partition, m.committed, m.stored] for m in self.moves]

    def refusal(self) -> str | None:
        if self.active:
            members = f"{self.members} member{'' if self.members == 1 else 's'}"
            return (f"stop the consumer first: {members} in the group {self.group} ({self.state}); "
                    f"Kafka takes new offsets only for a group without members")
        return None


# ------------------------------------------------------------------ reading the cluster


def _admin() -> AdminClient:
    return AdminClient(client_config())


def _probe() -> Consumer:
    return Consumer(client_config(**{"group.id": f"console-offsets-{uuid.uuid4().hex[:8]}",
                                     "enable.auto.commit": False}))


def group_state(group: str, admin: AdminClient | None = None) -> tuple[str, int]:
    """(state in lower case, number of members) of a consumer group."""
    admin = admin or _admin()
    try:
        described = admin.describe_consumer_groups([group], request_timeout=TIMEOUT)[group].result(timeout=2 * TIMEOUT)
    except (KafkaException, TimeoutError) as exc:
        raise OffsetResetError(f"the group {group} could not be described: {failure_reason(exc)}") from exc
    return str(described.state).split(".")[-1].lower(), len(described.members)


def _committed(admin: AdminClient, group: str, partitions: list[TopicPartition]) -> dict[tuple[str, int], int]:
    request = [ConsumerGroupTopicPartitions(group, [TopicPartition(p.topic, p.partition) for p in partitions])]
    try:
        listed = admin.list_consumer_group_offsets(request, request_timeout=TIMEOUT)[group].result(timeout=2 * TIMEOUT)
    except (KafkaException, TimeoutError) as exc:
        raise OffsetResetError(f"the group's committed offsets could not be read: {failure_reason(exc)}") from exc
    return {(tp.topic, tp.partition): tp.offset for tp in listed.topic_partitions if tp.offset >= 0}


def _validate(spec: ConsumerSpec, request: ResetRequest) -> list[str]:
    """The request's own checks (before the cluster is asked); returns the consumer's Kafka topics."""
    names = [topic_name(t) for t in spec.topics]
    if request.target not in TARGETS:
        raise InvalidReset(f"unknown target {request.target!r}: one of {', '.join(TARGETS)}")
    if request.topic is not None and request.topic not in names:
        raise InvalidReset(f"{spec.name} does not read {request.topic!r}; it reads {', '.join(names)}")
    if request.partition is not None:
        if request.topic is None:
            if len(names) != 1:
                raise InvalidReset("name the topic of the partition: this consumer reads " + ", ".join(names))
        if request.partition < 0:
            raise InvalidReset(f"partition {request.partition} does not exist: partitions count from 0")
    if request.target == TIMESTAMP:
        if request.timestamp is None:
            raise InvalidReset("a reset to a timestamp needs the timestamp")
        if request.timestamp.tzinfo is None:
            raise InvalidReset("the timestamp needs a time zone (it is read as UTC in the form)")
        if request.timestamp.timestamp() < 0:
            raise InvalidReset(f"the timestamp {request.timestamp.isoformat()} is before 1970")
    elif request.timestamp is not None:
        raise InvalidReset(f"a timestamp is only for the target {TIMESTAMP!r}")
    if request.target == AFTER_OFFSET:
        if request.partition is None or request.offset is None:
            raise InvalidReset("skipping past an offset needs the partition and the offset")
        if request.offset < 0:
            raise InvalidReset(f"offset {request.offset} is negative")
    elif request.offset is not None:
        raise InvalidReset(f"an offset is only for the target {AFTER_OFFSET!r}")
    return names


def plan_reset(spec: ConsumerSpec, request: ResetRequest) -> ResetPlan:
    """The dry run: every partition's positions now and after the reset. Changes nothing."""
    names = _validate(spec, request)
    if request.partition is not None and request.topic is None:
        request = replace(request, topic=names[0])
    group = spec.group_id()
    admin = _admin()
    state, members = group_state(group, admin)
    probe = _probe()
    try:
        partitions: list[TopicPartition] = []
        for name in names if request.topic is None else [request.topic]:
            try:
                metadata = probe.list_topics(name, timeout=TIMEOUT).topics.get(name)
            except KafkaException as exc:
                raise OffsetResetError(f"Kafka could not be asked about {name}: {failure_reason(exc)}") from exc
            if metadata is None or metadata.error is not None or not metadata.partitions:
                raise InvalidReset(f"the topic {name} does not exist on the cluster")
            pids = sorted(metadata.partitions)
            if request.partition is not None:
                if request.partition not in metadata.partitions:
                    raise InvalidReset(f"{name} has no partition {request.partition}: it has "
                                       f"{len(pids)} (0 to {pids[-1]})")
                pids = [request.partition]
            partitions += [TopicPartition(name, pid) for pid in pids]
        committed = _committed(admin, group, partitions)
        stored = offsets.positions(group, [(p.topic, p.partition) for p in partitions]) if spec.offsets_in_db else {}
        marks = {}
        for tp in partitions:
            try:
                marks[(tp.topic, tp.partition)] = probe.get_watermark_offsets(tp, timeout=TIMEOUT, cached=False)
            except KafkaException as exc:
                raise OffsetResetError(f"the watermarks of {tp.topic}[{tp.partition}] could not be read: "
                                       f"{failure_reason(exc)}") from exc
        by_time: dict[tuple[str, int], int] = {}
        if request.target == TIMESTAMP:
            assert request.timestamp is not None
            ms = int(request.timestamp.timestamp() * 1000)
            try:
                found = probe.offsets_for_times([TopicPartition(p.topic, p.partition, ms) for p in partitions],
                                                timeout=TIMEOUT)
            except KafkaException as exc:
                raise OffsetResetError(f"offsets_for_times failed: {failure_reason(exc)}") from exc
            by_time = {(tp.topic, tp.partition): tp.offset for tp in found}
    finally:
        probe.close()
    plan = ResetPlan(consumer=spec.name, group=group, state=state, members=members,
                     offsets_in_db=spec.offsets_in_db, request=request)
    for tp in partitions:
        key = (tp.topic, tp.partition)
        low, high = marks[key]
        if request.target == EARLIEST:
            new = low
        elif request.target == LATEST:
            new = high
        elif request.target == TIMESTAMP:
            found_at = by_time.get(key, -1)
            new = high if found_at < 0 else min(max(found_at, low), high)  # past the newest message: the end
        else:
            assert request.offset is not None
            if not low <= request.offset < high:
                kept = f"it keeps offsets {low} to {high - 1}" if high > low else "it is empty"
                raise InvalidReset(f"offset {request.offset} is not a message of {tp.topic}[{tp.partition}]: {kept}")
            new = request.offset + 1
        plan.moves.append(PartitionMove(topic=tp.topic, partition=tp.partition, committed=committed.get(key),
                                        stored=stored.get(key), low=low, high=high, new=new))
    return plan


# ------------------------------------------------------------------------ the move


def _lock_key(group: str) -> int:
    """A stable 64-bit key for the group's advisory lock: one reset of a group at a time."""
    return int.from_bytes(hashlib.blake2b(f"offset-reset:{group}".encode(), digest_size=8).digest(),
                          "big", signed=True)


def _store_positions(group: str, moves: list[PartitionMove]) -> None:
    """Set the stored positions exactly (backwards too: `offsets.record()` never moves back)."""
    with connection.cursor() as cursor:
        for move in moves:
            cursor.execute(
                f'INSERT INTO {_TABLE} ("group", topic, partition, next_offset, updated_at) '
                f"VALUES (%s, %s, %s, %s, now()) "
                f'ON CONFLICT ("group", topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, '
                f"updated_at = now()",
                [group, move.topic, move.partition, move.new],
            )


def _commit_to_kafka(admin: AdminClient, group: str, moves: list[PartitionMove]) -> None:
    request = [ConsumerGroupTopicPartitions(group, [TopicPartition(m.topic, m.partition, m.new) for m in moves])]
    try:
        result = admin.alter_consumer_group_offsets(request, request_timeout=TIMEOUT)[group].result(timeout=2 * TIMEOUT)
    except TimeoutError as exc:
        raise OffsetResetError("Kafka did not answer the commit of the new offsets in time: they may or may not "
                               "have moved; look at the group's lag, and run the reset again") from exc
    except KafkaException as exc:
        error = exc.args[0]
        if error.name() in _GROUP_ACTIVE_ERRORS:
            raise ResetRefused(f"a consumer joined the group meanwhile ({error.name()}): stop it first") from exc
        raise OffsetResetError(f"Kafka did not take the new offsets: {error.str()}") from exc
    errors = {f"{tp.topic}[{tp.partition}]": tp.error for tp in result.topic_partitions if tp.error is not None}
    if errors:
        names = {e.name() for e in errors.values()}
        text = "; ".join(f"{k}: {e.str()}" for k, e in sorted(errors.items()))
        if names & _GROUP_ACTIVE_ERRORS:
            raise ResetRefused(f"a consumer joined the group meanwhile: stop it first ({text})")
        raise OffsetResetError(f"Kafka refused the new offsets: {text}")


def apply_reset(spec: ConsumerSpec, request: ResetRequest, *,
                expected: list[list[Any]] | None = None) -> ResetPlan:
    """Move the group to the plan's new positions, in Kafka and (offsets_in_db) in PostgreSQL.

    `expected`: the positions of the dry run that was confirmed (`ResetPlan.positions()`);
    the move is refused if the group moved since. Raises ResetRefused (group active, moved,
    or a bad request: InvalidReset) or OffsetResetError (Kafka or PostgreSQL failed);
    nothing has moved then, except in the one case the message says so."""
    group = spec.group_id()
    moved_in_kafka = False
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_key(group)])
            if spec.offsets_in_db:  # held until the end: a consumer that starts now waits (offsets.positions)
                list(ConsumerOffset.objects.select_for_update().filter(group=group).values_list("pk", flat=True))
            plan = plan_reset(spec, request)
            refusal = plan.refusal()
            if refusal:
                raise ResetRefused(refusal, state=plan.state, members=plan.members)
            if expected is not None and [list(p) for p in expected] != plan.positions():
                raise ResetRefused("the group's positions changed since the dry run (did a consumer run?): "
                                   "run the dry run again", expected=expected, now=plan.positions())
            if spec.offsets_in_db:
                _store_positions(group, plan.moves)
            _commit_to_kafka(_admin(), group, plan.moves)
            moved_in_kafka = True
    except OffsetResetError:
        raise
    except Exception as exc:
        # Kafka took the offsets and then PostgreSQL failed on commit: say so, the reset can be run again.
        if moved_in_kafka:
            raise OffsetResetError(f"Kafka has the new offsets but PostgreSQL failed ({describe(exc, limit=None)}): "
                                   "run the same reset again") from exc
        raise OffsetResetError(f"the reset failed: {describe(exc, limit=None)}") from exc
    logger.info("offsets_reset consumer=%s group=%s reset=%r partitions=%d skipped=%d replayed=%d",
                spec.name, group, request.describe(), len(plan.moves), plan.skipped, plan.replayed)
    return plan


def parse_timestamp(text: str) -> datetime:
    """An ISO 8601 time (UTC when it names no zone) or milliseconds since the epoch."""
    text = (text or "").strip()
    if not text:
        raise InvalidReset("the timestamp is empty")
    if text.lstrip("-").isdigit():
        ms = int(text)
        if ms < 0:
            raise InvalidReset(f"the timestamp {text} is before 1970")
        try:
            return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
        except (OverflowError, OSError, ValueError) as exc:
            raise InvalidReset(f"the timestamp {text} (milliseconds) is out of range") from exc
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidReset(f"{text!r} is not a time: give ISO 8601 (2026-12-02T05:30:00, UTC) or "
                           f"milliseconds since the epoch") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
