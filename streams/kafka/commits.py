"""What one consumer process has committed to Kafka, and what it still owes.

Offsets are committed only for batches whose effects are applied (runtime.py
decides when); this room decides how, and makes sure a committed offset
reaches what is applied even when nothing new arrives on the partition:

* on the loop a commit is asynchronous: the group coordinator holds a commit
  while the group rebalances (up to a departed member's session timeout), and
  the batches must not stop meanwhile. In a revoke and at the stop it is
  synchronous, as the partitions go right after;
* the broker's answer comes back through `on_commit` (served by `consume()`):
  a refused offset that is still the newest sent for its partition becomes
  *due*, and is sent again a second later;
* positions PostgreSQL holds ahead of Kafka when partitions are assigned (a
  crash between the database commit and the Kafka commit, offsets_in_db) are
  due from the start.

Without the due offsets, a quiet partition's committed offset would stay
behind what is applied for as long as nothing new arrives: its lag would never
reach 0 on the dashboard, on /metrics and in `kafka-consumer-groups`.
Committing an applied position is always safe.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

logger = logging.getLogger(__name__)

Key = tuple[str, int]  # (topic, partition)


class CommitLedger:
    """The commits of one consumer: sent, confirmed, and due again."""

    def __init__(self, consumer_name: str) -> None:
        self.name = consumer_name
        self.consumer: Any = None  # the confluent-kafka Consumer, set once it exists
        self.due: dict[Key, int] = {}  # applied, not confirmed: sent again
        self.sent: dict[Key, int] = {}  # the newest offset sent per partition
        self.ok: dict[Key, int] = {}  # the newest offset the broker confirmed per partition
        self.retry_after = 0.0  # time.monotonic() before which nothing due is sent again
        self.assigned: set[Key] = set()

    def assign(self, keys: list[Key], *, stored_ahead: dict[Key, int]) -> None:
        self.assigned.update(keys)
        self.due.update(stored_ahead)

    def forget(self, keys: set[Key]) -> None:
        """Partitions revoked or lost: nothing of them is owed by this member any more."""
        for key in keys:
            self.assigned.discard(key)
            self.due.pop(key, None)
            self.sent.pop(key, None)
            self.ok.pop(key, None)

    def commit(self, offsets: dict[Key, int], *, synchronous: bool) -> None:
        """Commit `offsets` (all applied): asynchronous on the loop, synchronous in a revoke
        and at the stop. An offset this commit passes is no longer due."""
        for key, offset in offsets.items():
            if self.due.get(key, offset + 1) <= offset:
                del self.due[key]
            self.sent[key] = max(self.sent.get(key, -1), offset)
        listed = [TopicPartition(t, p, o) for (t, p), o in sorted(offsets.items())]
        if not listed:
            return
        try:
            self.consumer.commit(offsets=listed, asynchronous=not synchronous)
        except KafkaException as exc:
            logger.warning("consumer_commit_failed consumer=%s error=%s (applied; committed later or replayed)",
                           self.name, exc.args[0] if exc.args else exc)
            if synchronous:
                for key, offset in offsets.items():
                    if key in self.assigned:
                        self.due[key] = max(self.due.get(key, -1), offset)

    def on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """The broker's answer to a commit (the consumer's `on_commit` callback)."""
        refused = []
        for tp in partitions:
            key, offset = (tp.topic, tp.partition), tp.offset
            if error is None and tp.error is None:
                self.ok[key] = max(self.ok.get(key, -1), offset)
                if self.due.get(key, offset + 1) <= offset:
                    del self.due[key]
            elif key in self.assigned and offset == self.sent.get(key) and offset > self.ok.get(key, -1):
                self.due[key] = max(self.due.get(key, -1), offset)
                refused.append(f"{tp.topic}[{tp.partition}]@{offset}")
        if refused:
            self.retry_after = time.monotonic() + 1.0
            logger.warning("consumer_commit_failed consumer=%s error=%s partitions=%s (applied; sent again)",
                           self.name, error or partitions[0].error, ",".join(refused))

    def owed(self) -> dict[Key, int]:
        return {k: o for k, o in self.due.items() if o > self.ok.get(k, -1)}

    def send_due(self, *, synchronous: bool = False) -> None:
        """Send what is due again (at most once a second while answers are awaited)."""
        if not self.due or (not synchronous and time.monotonic() < self.retry_after):
            return
        due = self.owed()
        self.due = dict(due)
        if not due:
            return
        self.retry_after = time.monotonic() + 1.0  # until the answer comes
        self.commit(due, synchronous=synchronous)  # a refusal makes them due again (on_commit)
        logger.info("consumer_positions_commit consumer=%s partitions=%s", self.name,
                    ",".join(f"{t}[{p}]@{o}" for (t, p), o in sorted(due.items())))
