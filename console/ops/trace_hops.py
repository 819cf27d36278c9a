"""The hops of a trace and the collector that gathers them, for the trace page
(console/ops/trace.py walks the paths, this module holds what a path is made of).

A hop is one place an event was seen: a message on a topic (partition, offset, time,
key, trace id, the consumer that reads it and the member that owns its partition now),
a stored row, a window, a quarantine record, a dead letter, a file, a Celery task. Each
names the page it links to and the permission that page needs, so the view can drop the
links the operator cannot follow. Message values never go on a hop: ids, keys, topics,
partitions, offsets, times, statuses and reasons only.

`Collector` holds one trace while it is walked: its hops (one per place, however many
paths reach it), its scans' notes and shared budget (console/ops/trace_scan.py), the
trace ids met on the way, and who owns which partition by the consumers' heartbeats
(members.py's rule of live members).

Imports: the heartbeat rows and their reading (streams.kafka), the registry and topic names,
quarantine's model, members.py and trace_scan.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.admin.utils import quote
from django.urls import reverse
from django.utils import timezone

from quarantine.models import QuarantineRecord
from streams.kafka import tracing
from streams.kafka.browse import Message
from streams.kafka.heartbeat import HISTORY, member_entry
from streams.kafka.models import ConsumerHeartbeat
from streams.kafka.registry import consumers
from streams.kafka.topics import topic_name

from .members import group_members
from .trace_scan import Budget, ScanNote, read_one, scan

VIEW_TOPIC_MESSAGES = "console.view_topic_messages"


@dataclass
class Hop:
    kind: str  # message, row, window, quarantine, dead-letter, file, task, catalog
    title: str
    at: datetime | None = None
    where: str = ""  # topic[partition]@offset, or the row's key
    url: str = ""
    perm: str = ""  # what the linked page needs
    details: list[tuple[str, str]] = field(default_factory=list)
    consumer: str = ""  # the consumer that reads it (a message) or wrote it (a row)
    member: str = ""  # the member that owns the message's partition now, by its heartbeat
    trace_id: str = ""
    batch_trace: bool = False  # the trace id is the publishing batch's, not the event's own
    red: bool = False


def admin_url(model: type, pk: Any) -> str:
    meta = model._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[quote(pk)])


def admin_perm(model: type) -> str:
    return f"{model._meta.app_label}.view_{model._meta.model_name}"


def text(data: bytes | None, chars: int = 80) -> str:
    value = (data or b"")[: chars * 4].decode("utf-8", "replace")
    return value[:chars] + ("…" if len(value) > chars else "")


def json_field(data: bytes | None, name: str) -> Any:
    """One field of a JSON object message (None when it is not one): for matching, never shown."""
    try:
        value = json.loads(data or b"")
    except (ValueError, UnicodeDecodeError):
        return None
    return value.get(name) if isinstance(value, dict) else None


def when(epoch_ms: int) -> str:
    return f"{datetime.fromtimestamp(epoch_ms / 1000, tz=UTC):%Y-%m-%d %H:%M:%S.%f}"[:-3]


class Collector:
    """One trace being walked: hops by place, scan notes, trace ids, the shared budget."""

    def __init__(self) -> None:
        self.budget = Budget.start()
        self.hops: dict[tuple, Hop] = {}
        self.scans: list[ScanNote] = []
        self.notes: list[str] = []
        self.trace_ids: dict[str, None] = {}
        self._owners: dict[tuple[str, str, int], str] | None = None
        self._readers: dict[str, list[str]] | None = None

    # ------------------------------------------------------------ gathering
    def add(self, key: tuple, hop: Hop) -> Hop:
        if hop.trace_id and not hop.batch_trace:
            self.trace_ids.setdefault(hop.trace_id, None)
        return self.hops.setdefault(key, hop)

    def saw_trace(self, trace_id: Any) -> str:
        value = trace_id.hex if hasattr(trace_id, "hex") else str(trace_id or "")
        if value:
            self.trace_ids.setdefault(value, None)
        return value

    def scan(self, logical: str, *, since: datetime, until: datetime, match: Callable[[Message], bool],
             purpose: str, want: int | None = None, newest_first: bool = True) -> list[Message]:
        until = min(until, timezone.now() + timedelta(seconds=1))
        messages, note = scan(topic_name(logical), since=since, until=until, match=match, budget=self.budget,
                              purpose=purpose, want=want, newest_first=newest_first)
        self.scans.append(note)
        return messages

    def timeline(self) -> list[Hop]:
        """The hops in time order; a hop without a time keeps its place after the timed ones."""
        hops = list(self.hops.values())
        far = datetime.max.replace(tzinfo=UTC)
        return sorted(hops, key=lambda h: h.at or far)

    # ------------------------------------------------------------ who reads and owns what
    def readers(self, topic: str) -> list[str]:
        """The registered consumers that read `topic` (a Kafka name)."""
        if self._readers is None:
            self._readers = {}
            for name, spec in consumers().items():
                for logical in spec.topics:
                    self._readers.setdefault(topic_name(logical), []).append(name)
        return self._readers.get(topic, [])

    def owner(self, consumer: str, topic: str, partition: int) -> str:
        """The live member of `consumer` that owns topic[partition] now, by the heartbeats (read once)."""
        if self._owners is None:
            now = timezone.now()
            entries: dict[str, list[dict[str, Any]]] = {}
            for row in ConsumerHeartbeat.objects.filter(beat_at__gte=now - HISTORY):
                entries.setdefault(row.consumer, []).append(member_entry(row, now=now))
            self._owners = {}
            for name, members in entries.items():
                for member in group_members(members, lags=None).shown:
                    if member.condition == "live":
                        for t, p in member.partitions:
                            self._owners[(name, t, p)] = f"{member.label} ({member.member})"
        return self._owners.get((consumer, topic, partition), "")

    # ------------------------------------------------------------ hops of common things
    def message(self, m: Message, title: str, *, details: Iterable[tuple[str, str]] = (),
                producer: str = "", red: bool = False, batch_trace: bool = False) -> Hop:
        """A hop for one message: where, when, its key and trace id, who reads it and owns its partition.
        `batch_trace`: its context is the batch's that published it (a window's), not the event's."""
        raw = tracing.message_traceparent(m.headers)
        trace_id = tracing.trace_id_of(raw) or ""
        readers = self.readers(m.topic)
        consumer = readers[0] if readers and not m.dead_letter else ""
        owner = self.owner(consumer, m.topic, m.partition) if consumer else ""
        fields = [("time", when(m.sort_ms)) if m.timestamp else ("time", "none")]
        if m.key is not None:
            fields.append(("key", text(m.key)))
        if producer:
            fields.append(("published by", producer))
        fields.extend(details)
        hop = Hop(kind="dead-letter" if m.dead_letter else "message", title=title, at=m.timestamp,
                  where=f"{m.topic}[{m.partition}]@{m.offset}",
                  url=reverse("ops-message", args=[m.topic, m.partition, m.offset]), perm=VIEW_TOPIC_MESSAGES,
                  details=fields, consumer=consumer,
                  member=owner or ("no live member owns it now" if consumer else ""), trace_id=trace_id,
                  batch_trace=batch_trace, red=red)
        return self.add(("message", m.topic, m.partition, m.offset), hop)

    def record(self, record: QuarantineRecord) -> Hop:
        """A quarantine record, and the dead letter its consumer published beside it."""
        key = ("quarantine", record.pk)
        if key in self.hops:
            return self.hops[key]
        details = [("status", record.get_status_display()), ("reason", record.reason), ("origin", record.origin)]
        if record.consumer:
            details.append(("consumer", record.consumer))
        if record.replay_count:
            details.append(("re-driven", f"{record.replay_count} time(s)"))
        hop = self.add(key, Hop(
            kind="quarantine", title=f"Quarantine record #{record.pk}", at=record.created_at,
            where=record.origin, url=admin_url(QuarantineRecord, record.pk), perm=admin_perm(QuarantineRecord),
            details=details, consumer=record.consumer, trace_id=self.saw_trace(record.trace_id),
            red=record.status == QuarantineRecord.Status.OPEN))
        if record.source == QuarantineRecord.Source.MESSAGE and record.offset is not None:
            self.dead_letter(record)
        return hop

    def dead_letter(self, record: QuarantineRecord) -> None:
        spec = consumers().get(record.consumer)
        logical = spec.dead_letter_topic if spec else "dead_letters"

        def copy_of_record(m: Message) -> bool:
            dlq = m.dead_letter
            return (dlq.get("original-topic") == record.topic and dlq.get("consumer") == record.consumer
                    and dlq.get("original-partition") == str(record.partition)
                    and dlq.get("original-offset") == str(record.offset))

        found = self.scan(logical, since=record.created_at - timedelta(seconds=5),
                          until=record.created_at + timedelta(minutes=2), match=copy_of_record, want=1,
                          newest_first=False, purpose=f"the dead letter of quarantine record #{record.pk}")
        for m in found:
            self.message(m, f"Dead letter on {m.topic}", producer=record.consumer, red=True,
                         details=[("reason", m.dead_letter.get("reason", "")),
                                  ("original", f"{record.topic}[{record.partition}]@{record.offset}")])
        if not found:
            self.notes.append(f"No dead letter of quarantine record #{record.pk} was found on "
                              f"{topic_name(logical)} in the scanned range.")

    def origin_message(self, record: QuarantineRecord, title: str) -> Message | None:
        """The message a quarantine record came from, read at its place (no scan)."""
        m, error = read_one(record.topic, record.partition, record.offset)
        if m is None:
            self.notes.append(f"The origin of quarantine record #{record.pk}, {record.origin}, cannot be read: "
                              f"{error}.")
            return None
        self.message(m, title)
        return m
