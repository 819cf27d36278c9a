"""The operator actions on Kafka topics, from the message browser: produce a message
(a copy of one, or a new one) and re-drive dead letters straight from their topic.
Services: each validates first, waits for the broker's acknowledgement, and writes
one console.AuditEntry whatever the outcome.

Re-driving from a dead-letter topic is for dead letters that have no quarantine
record (recorded before the quarantine app was there, purged by retention, or
written by another tool); one with a record is re-driven from the record
(quarantine/services/redrive.py), so it is skipped here. The same bounds as the
quarantine re-drive hold: at most CONSOLE_DLQ_REDRIVE_MAX messages at once, and a
message already re-driven QUARANTINE_MAX_REPLAYS times (its `x-replay-count`) is
refused. A dead letter is re-driven once: a later re-drive of a range skips the
offsets an earlier one published (read back from the audit log), and concurrent
re-drives of one topic are serialized by a transaction-scoped advisory lock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from quarantine.models import QuarantineRecord
from streams.kafka import browse, tracing
from streams.kafka.client import describe
from streams.kafka.headers import REPLAY_COUNT, redrive_headers, replay_count_of
from streams.kafka.producer import DeliveryError, Outbound, action_ack_timeout, publish_and_wait
from streams.kafka.registry import consumers
from streams.kafka.topics import topic_name

from ..audit import ActionError, ActionRefused, audit_record
from ..models import AuditEntry

logger = logging.getLogger(__name__)

PRODUCE_ACTION = "message_produce"
REDRIVE_ACTION = "dead_letter_redrive"
MAX_HEADERS = 64


def parse_headers(text: str) -> list[tuple[str, bytes]]:
    """`name: value`, one per line (blank lines ignored) -> Kafka headers. Raises
    ActionRefused naming the line that has no name."""
    headers = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise ActionRefused(f"header line {number} is not 'name: value': {line[:80]!r}")
        headers.append((name.strip(), value.strip().encode()))
    if len(headers) > MAX_HEADERS:
        raise ActionRefused(f"{len(headers)} headers; at most {MAX_HEADERS}")
    return headers


def writable_topic(topic: str) -> None:
    """Refuses Kafka's internal topics and a topic that does not exist (no auto-creation from here)."""
    if not topic or topic.startswith("__"):
        raise ActionRefused(f"{topic!r} is an internal topic: the console does not write to it")
    try:
        browse.topic_ranges(topic)
    except browse.BrowseError as exc:
        raise ActionRefused(str(exc)) from exc


def _audit_text(data: bytes | None, limit: int) -> str:
    """Bytes as text an audit entry (jsonb) can hold: invalid UTF-8 replaced, NUL written as \\0."""
    return (data or b"")[:limit].decode("utf-8", "replace").replace("\x00", "\\0")


def message_produce(*, by: Any, topic: str, value: bytes, key: bytes | None = None,
                    headers: list[tuple[str, bytes]] | None = None, copied_from: str = "") -> dict[str, Any]:
    """Publish one message and wait for the broker's acknowledgement; returns where it went.
    `copied_from` ("topic[partition]@offset") marks a copy of a browsed message."""
    headers = headers or []
    detail: dict[str, Any] = {
        "topic": _audit_text(topic.encode(), 249), "key": _audit_text(key, 200) if key is not None else None,
        "headers": [[_audit_text(k.encode(), 200), _audit_text(v, 200)] for k, v in headers], "bytes": len(value),
        "value": _audit_text(value, 2000), "copied_from": copied_from or None,
    }
    target = _audit_text(f"topic:{topic}".encode(), 255)
    try:
        if len(value) > settings.CONSOLE_PRODUCE_MAX_BYTES:
            raise ActionRefused(f"the value is {len(value):,} bytes; at most "
                                f"{settings.CONSOLE_PRODUCE_MAX_BYTES:,} (CONSOLE_PRODUCE_MAX_BYTES)")
        writable_topic(topic)
        delivered: list[tuple[str, int, int]] = []
        try:
            publish_and_wait([Outbound(topic=topic, value=value, key=key, headers=headers or None)],
                             timeout=action_ack_timeout(), delivered=delivered)
        except DeliveryError as exc:
            raise ActionError(f"the broker did not acknowledge the message: {exc}") from exc
        except Exception as exc:  # KafkaException, e.g. a value over the broker's message.max.bytes
            raise ActionError(f"the message could not be published: {describe(exc, limit=None)}") from exc
        _topic, partition, offset = delivered[0]
        detail.update(partition=partition, offset=offset)
        audit_record(by=by, action=PRODUCE_ACTION, target=target, outcome=AuditEntry.Outcome.SUCCEEDED, detail=detail)
        return {"topic": topic, "partition": partition, "offset": offset}
    except ActionError as exc:
        audit_record(by=by, action=PRODUCE_ACTION, target=target, outcome=exc.outcome,
                     detail={**detail, "message": _audit_text(exc.message.encode(), 2000)})
        raise


# ------------------------------------------------------------ dead-letter re-drive


def dead_letter_topics() -> dict[str, list[str]]:
    """Each dead-letter topic -> the registered consumers that write to it."""
    found: dict[str, list[str]] = {}
    for spec in consumers().values():
        found.setdefault(topic_name(spec.dead_letter_topic), []).append(spec.name)
    return found


def _consumed_topics() -> dict[str, set[str]]:
    """Each registered consumer -> the Kafka topics it reads."""
    return {spec.name: {topic_name(t) for t in spec.topics} for spec in consumers().values()}


READY, QUARANTINED, REDRIVEN, NO_ORIGIN, REPLAY_LIMIT = "ready", "quarantined", "redriven", "no-origin", "replay-limit"
STATUS_TEXT = {
    READY: "will be re-driven",
    QUARANTINED: "has a quarantine record: re-drive it from there",
    REDRIVEN: "already re-driven from this topic",
    NO_ORIGIN: "no usable x-dlq-original-topic",
    REPLAY_LIMIT: "re-driven too often (QUARANTINE_MAX_REPLAYS)",
}


@dataclass
class DeadLetter:
    message: browse.Message
    status: str
    original_topic: str = ""
    record_id: int | None = None
    replay_count: int = 0

    @property
    def status_text(self) -> str:
        return STATUS_TEXT[self.status]


@dataclass
class RedrivePlan:
    topic: str
    partition: int
    start: int
    stop: int  # the offset after the last one read
    letters: list[DeadLetter] = field(default_factory=list)
    limit_reached: bool = False

    @property
    def ready(self) -> list[DeadLetter]:
        return [d for d in self.letters if d.status == READY]

    @property
    def counts(self) -> dict[str, int]:
        out = {status: 0 for status in STATUS_TEXT}
        for letter in self.letters:
            out[letter.status] += 1
        return out

    @property
    def by_target(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for letter in self.ready:
            out[letter.original_topic] = out.get(letter.original_topic, 0) + 1
        return out


def _redriven_offsets(topic: str, partition: int) -> set[int]:
    done: set[int] = set()
    for detail in AuditEntry.objects.filter(action=REDRIVE_ACTION, target=f"topic:{topic}",
                                            outcome=AuditEntry.Outcome.SUCCEEDED,
                                            detail__partition=partition).values_list("detail", flat=True):
        done.update(int(o) for o in detail.get("offsets", []))
    return done


def dead_letters_plan(*, topic: str, partition: int, start: int, stop: int | None = None) -> RedrivePlan:
    """The dry run: what re-driving [start, stop) of one partition of a dead-letter topic
    would do, message by message (read, never committed). Reads at most
    CONSOLE_DLQ_REDRIVE_MAX messages; `stop` None is the partition's end."""
    writers = dead_letter_topics()
    if topic not in writers:
        raise ActionRefused(f"{topic!r} is not a dead-letter topic of any registered consumer "
                            f"(those are: {', '.join(sorted(writers))})")
    if start < 0:
        raise ActionRefused("the first offset must be 0 or more")
    limit = settings.CONSOLE_DLQ_REDRIVE_MAX
    try:
        messages, reached = browse.read_range(topic, partition, start, stop if stop is not None else 2**62,
                                              limit=limit)
    except browse.BrowseError as exc:
        raise ActionRefused(str(exc)) from exc
    plan = RedrivePlan(topic=topic, partition=partition, start=start, stop=reached,
                       limit_reached=len(messages) >= limit)
    reads = _consumed_topics()
    redriven = _redriven_offsets(topic, partition)
    max_replays = settings.QUARANTINE_MAX_REPLAYS
    for m in messages:
        fields = m.dead_letter
        original, consumer = fields.get("original-topic", ""), fields.get("consumer", "")
        usable = original and not original.startswith("__") and original not in writers and (
            original in reads.get(consumer, set()) if consumer in reads
            else any(original in topics for topics in reads.values()))
        letter = DeadLetter(message=m, status=READY, original_topic=original,
                            replay_count=replay_count_of(m.header(REPLAY_COUNT)))
        if m.offset in redriven:
            letter.status = REDRIVEN
        elif not usable:
            letter.status = NO_ORIGIN
        elif letter.replay_count >= max_replays:
            letter.status = REPLAY_LIMIT
        plan.letters.append(letter)
    _attach_records(plan)
    return plan


def _attach_records(plan: RedrivePlan) -> None:
    """Mark the dead letters that have a quarantine record (one query for the plan)."""
    keyed = {}
    for letter in plan.letters:
        fields = letter.message.dead_letter
        try:
            keyed[(fields.get("consumer", ""), letter.original_topic, int(fields.get("original-partition", "")),
                   int(fields.get("original-offset", "")))] = letter
        except ValueError:
            continue
    if not keyed:
        return
    rows = QuarantineRecord.objects.filter(
        source=QuarantineRecord.Source.MESSAGE, topic__in={k[1] for k in keyed},
        offset__in={k[3] for k in keyed},
    ).values_list("pk", "consumer", "topic", "partition", "offset")
    for pk, consumer, topic, partition, offset in rows:
        letter = keyed.get((consumer, topic, partition, offset))
        if letter is not None:
            letter.record_id = pk
            if letter.status == READY:
                letter.status = QUARANTINED


def _redrive_message(letter: DeadLetter) -> Outbound:
    m = letter.message
    headers = tracing.redriven(redrive_headers([(k, v or b"") for k, v in m.headers], replays=letter.replay_count + 1))
    return Outbound(topic=letter.original_topic, value=m.value or b"", key=m.key, headers=headers)


def dead_letters_redrive(*, by: Any, topic: str, partition: int, start: int, stop: int,
                         expected: int | None = None) -> dict[str, Any]:
    """Re-drive the ready dead letters of [start, stop) to their original topics, wait for
    every acknowledgement, and audit it. `expected` is the count the operator confirmed
    in the dry run: a different count now (the topic changed) is refused."""
    target = _audit_text(f"topic:{topic}".encode(), 255)
    detail: dict[str, Any] = {"partition": partition, "start": start, "stop": stop}  # numbers only
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"console-dlq-redrive:{topic}"])
            plan = dead_letters_plan(topic=topic, partition=partition, start=start, stop=stop)
            ready = plan.ready
            detail.update(counts=plan.counts, targets=plan.by_target)
            if not ready:
                raise ActionRefused("nothing to re-drive in this range: " + ", ".join(
                    f"{n} {STATUS_TEXT[s]}" for s, n in plan.counts.items() if n) if plan.letters
                    else "nothing to re-drive: the range is empty")
            if expected is not None and expected != len(ready):
                raise ActionRefused(f"the dry run showed {expected} to re-drive, there are {len(ready)} now: "
                                    "look at the dry run again")
            try:
                publish_and_wait([_redrive_message(d) for d in ready], timeout=action_ack_timeout())
            except DeliveryError as exc:
                raise ActionError(f"the broker did not acknowledge the re-drive: {exc}") from exc
            except Exception as exc:
                raise ActionError(f"the re-drive could not be published: {describe(exc, limit=None)}") from exc
            detail["offsets"] = [d.message.offset for d in ready]
            audit_record(by=by, action=REDRIVE_ACTION, target=target, outcome=AuditEntry.Outcome.SUCCEEDED,
                         detail=detail)
            return {"redriven": len(ready), "targets": plan.by_target, "counts": plan.counts}
    except ActionError as exc:
        audit_record(by=by, action=REDRIVE_ACTION, target=target, outcome=exc.outcome,
                     detail={**detail, "message": _audit_text(exc.message.encode(), 2000)})
        raise
