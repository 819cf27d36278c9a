"""The names of the bookkeeping headers on Kafka messages, each defined once, and
the two rules that write them.

* Dead letters (`x-dlq-*`): the runtime writes them on a rejected message
  (apply.py, `dead_letter_headers`); the message browser reads them back
  (browse.py, `Message.dead_letter`) and the re-drives strip them.
* Replays: a message sent back to its original topic carries how often it was
  re-driven (`x-replay-count`, which bounds replays to QUARANTINE_MAX_REPLAYS)
  and, when it came from a quarantine record, that record (`x-quarantine-record`).
  Quarantine's re-drive and the console's re-drive from a dead-letter topic both
  build them with `redrive_headers`; quarantine's recording reads the count back
  when the message is dead-lettered again.

* Trace context (`traceparent`, W3C): every message the console produces carries
  one; tracing.py reads and writes it.

Pure: no Kafka client, no app. Celery's replay headers on a re-queued task are
quarantine's own (quarantine/services/redrive.py).
"""

from __future__ import annotations

from collections.abc import Iterable

Headers = list[tuple[str, bytes]]

DLQ_PREFIX = "x-dlq-"
DLQ_REASON = DLQ_PREFIX + "reason"
DLQ_CONSUMER = DLQ_PREFIX + "consumer"
DLQ_ORIGINAL_TOPIC = DLQ_PREFIX + "original-topic"
DLQ_ORIGINAL_PARTITION = DLQ_PREFIX + "original-partition"
DLQ_ORIGINAL_OFFSET = DLQ_PREFIX + "original-offset"
DLQ_REASON_MAX_BYTES = 1000

TRACEPARENT = "traceparent"

REPLAY_COUNT = "x-replay-count"
QUARANTINE_RECORD = "x-quarantine-record"


def dead_letter_headers(headers: Iterable[tuple[str, bytes]], *, reason: str, consumer: str, topic: str,
                        partition: int, offset: int) -> Headers:
    """A rejected message's headers, any earlier dead-letter ones replaced by where it was
    read and why it was rejected (the reason cut to DLQ_REASON_MAX_BYTES)."""
    kept = [(k, v) for k, v in headers if not k.startswith(DLQ_PREFIX)]
    return kept + [
        (DLQ_REASON, reason.encode()[:DLQ_REASON_MAX_BYTES]),
        (DLQ_CONSUMER, consumer.encode()),
        (DLQ_ORIGINAL_TOPIC, topic.encode()),
        (DLQ_ORIGINAL_PARTITION, str(partition).encode()),
        (DLQ_ORIGINAL_OFFSET, str(offset).encode()),
    ]


def redrive_headers(headers: Iterable[tuple[str, bytes]], *, replays: int, record: int | None = None) -> Headers:
    """The headers of a message sent back to its original topic: its own, without the
    dead-letter and replay bookkeeping, plus the replay count it now carries (`replays`,
    the earlier count plus one) and the quarantine record it came from, if any."""
    skip = {REPLAY_COUNT, QUARANTINE_RECORD}
    kept = [(k, v) for k, v in headers if k not in skip and not k.startswith(DLQ_PREFIX)]
    kept.append((REPLAY_COUNT, str(replays).encode()))
    if record is not None:
        kept.append((QUARANTINE_RECORD, str(record).encode()))
    return kept


def replay_count_of(raw: bytes | str | int | None) -> int:
    """The replay count a header (or a task's request) carried: 0 when absent or unreadable."""
    try:
        return max(int(raw or 0), 0)
    except (TypeError, ValueError):
        return 0
