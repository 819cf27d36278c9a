"""Bounded topic scans for the trace page (console/ops/trace.py): the messages of one
topic between two times that one test picks out, and a note of what was read.

A scan is bounded three ways, and its note says which bound stopped it:

* in time: it reads only the offsets between `offsets_for_time(since)` and
  `offsets_for_time(until)` of each partition (message timestamps, not event times);
* in messages: at most CONSOLE_TRACE_SCAN_LIMIT messages per topic (20,000);
* on the wall clock: every scan of one trace shares CONSOLE_TRACE_SECONDS (5 s) in all.

It reads through the message browser's own reads (streams.kafka.browse: `offsets_for_time`,
`read_range`), chunk by chunk and partition by partition in turn, so a bound that stops it
leaves every partition read about as far. Newest first by default: what a trace looks for is
usually near the end of its range. Nothing here commits an offset or joins a group.

Imports: the platform's browser reads (streams.kafka.browse) and Django's settings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from confluent_kafka import KafkaException
from django.conf import settings

from streams.kafka import browse
from streams.kafka.client import failure_reason

CHUNK = 2_000  # messages read from one partition before the next partition's turn
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Budget:
    """What every scan of one trace may still spend: a deadline, and a cap per topic."""

    per_topic: int
    seconds: float
    deadline: float

    @classmethod
    def start(cls) -> Budget:
        seconds = settings.CONSOLE_TRACE_SECONDS
        return cls(per_topic=max(settings.CONSOLE_TRACE_SCAN_LIMIT, 1),
                   seconds=seconds, deadline=time.monotonic() + seconds)

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.deadline


@dataclass
class ScanNote:
    """What one scan read, for the page: how many messages of which topic between which
    times, how many matched, and why it stopped early ("" when it read its range whole or
    stopped because it had found what it looked for)."""

    topic: str
    purpose: str
    since: datetime
    until: datetime
    scanned: int = 0
    found: int = 0
    stopped: str = ""
    error: str = ""
    partitions: list[int] = field(default_factory=list)

    @property
    def text(self) -> str:
        head = (f"scanned {self.scanned:,} message{'s' if self.scanned != 1 else ''} of topic {self.topic} "
                f"between {self.since:%Y-%m-%d %H:%M:%S} and {self.until:%Y-%m-%d %H:%M:%S} UTC "
                f"({self.purpose}): {self.found} found")
        if self.error:
            return f"{head}; could not read it: {self.error}"
        return f"{head}; stopped early: {self.stopped}" if self.stopped else head


def _bounds(topic: str, since: datetime, until: datetime) -> dict[int, list[int]]:
    """Per partition, [low, high) of the offsets whose timestamps fall in [since, until)."""
    since = max(since, EPOCH)  # Kafka reads a negative time as "the end" or "the start"
    lows = browse.offsets_for_time(topic, since)
    highs = browse.offsets_for_time(topic, until)
    return {p: [low, highs.get(p, low)] for p, low in sorted(lows.items()) if highs.get(p, low) > low}


def scan(topic: str, *, since: datetime, until: datetime, match: Callable[[browse.Message], bool],
         budget: Budget, purpose: str, want: int | None = None,
         newest_first: bool = True) -> tuple[list[browse.Message], ScanNote]:
    """The messages of `topic` stamped in [since, until) that `match`, oldest first, and the
    scan's note. Stops once `want` matched (newest first: the newest ones), or at a bound."""
    note = ScanNote(topic=topic, purpose=purpose, since=since, until=until)
    found: list[browse.Message] = []
    if budget.expired:
        note.stopped = f"the time limit of {budget.seconds:g} s was spent before this topic"
        return found, note
    try:
        cursors = _bounds(topic, since, until)
        note.partitions = sorted(cursors)
        while cursors:
            if want is not None and len(found) >= want:
                break
            for partition in list(cursors):
                room = budget.per_topic - note.scanned
                if room <= 0:
                    note.stopped = f"the cap of {budget.per_topic:,} messages per topic"
                    cursors.clear()
                    break
                if budget.expired:
                    note.stopped = f"the time limit of {budget.seconds:g} s"
                    cursors.clear()
                    break
                low, high = cursors[partition]
                step = min(CHUNK, room)
                start, stop = (max(low, high - step), high) if newest_first else (low, min(high, low + step))
                read, reached = browse.read_range(topic, partition, start, stop, limit=stop - start)
                note.scanned += len(read)
                found.extend(m for m in read if match(m))
                if reached < stop:  # Kafka did not hand the whole chunk over in time
                    note.stopped = f"{topic}[{partition}] offsets {reached}..{stop - 1} were not delivered in time"
                    del cursors[partition]
                    continue
                cursors[partition] = [low, start] if newest_first else [stop, high]
                if cursors[partition][0] >= cursors[partition][1]:
                    del cursors[partition]
    except browse.BrowseError as exc:
        note.error = str(exc)
    except KafkaException as exc:
        note.error = f"Kafka cannot answer now ({failure_reason(exc)})"
    found.sort(key=lambda m: (m.sort_ms, m.partition, m.offset))
    if want is not None and len(found) > want:
        found = found[-want:] if newest_first else found[:want]
    note.found = len(found)
    return found, note


def read_one(topic: str, partition: int, offset: int) -> tuple[browse.Message | None, str]:
    """One message at a known place (a quarantine record's origin), or why it cannot be read."""
    try:
        return browse.read_message(topic, partition, offset), ""
    except browse.BrowseError as exc:
        return None, str(exc)
    except KafkaException as exc:
        return None, f"Kafka cannot answer now ({failure_reason(exc)})"
