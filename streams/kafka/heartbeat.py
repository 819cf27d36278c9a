"""A consumer process's heartbeat: its state, last error and counters, in PostgreSQL.

The runtime calls `Pulse.beat()` between batches (never inside a batch's
transaction): a row per process (consumer, host:pid) is upserted at most every
CONSUMER_HEARTBEAT_SECONDS, and at once when the state changes. A heartbeat
that cannot be written (PostgreSQL is down) is skipped, never fatal: the row
then goes stale, which is what /healthz reports. `consumer_health()` reads
the rows for /healthz and the operations dashboard, each process described by
`member_entry()` (its instance id, its partitions, how long ago it beat), and
`member_is_live()` is the one rule of which processes count as live members, for
/healthz, the dashboards and the member views. `rival_group()` reads them
for a consumer whose state in PostgreSQL is shared across groups (one group per
database, ConsumerSpec.one_group_per_database).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

logger = logging.getLogger(__name__)


# Upper bounds (seconds) of the batch-duration histogram, from a small batch to a slow one.
BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, float("inf"))


def batch_quantile(buckets: dict[str, int], q: float) -> float | None:
    """The q-quantile of a cumulative bucket histogram: the upper bound of the bucket it falls in
    (None with no batch yet). Coarse by design: what a dashboard needs to say p50 and p99."""
    bounds = sorted((float(bound), count) for bound, count in buckets.items())
    total = bounds[-1][1] if bounds else 0
    if not total:
        return None
    for bound, count in bounds:
        if count >= q * total:
            return bound
    return bounds[-1][0]


def process_member() -> str:
    """This process as a heartbeat row names it: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


class Pulse:
    """The heartbeat of one consumer process."""

    def __init__(self, *, consumer: str, group_id: str, topics: list[str], instance_id: str = "") -> None:
        self.consumer = consumer
        self.member = process_member()
        self.group_id = group_id
        self.topics = topics
        self.instance_id = instance_id
        self.partitions: list[list[Any]] = []
        self.state = "running"
        self.reason = ""
        self.last_error = ""
        self.last_error_at = None
        self.started_at = timezone.now()
        self.last_batch_at = None
        self.counts = {"batches": 0, "messages": 0, "applied": 0, "dead_lettered": 0, "refused": 0}
        # Cumulative histogram of batch durations (apply + publish + commit), Prometheus-style:
        # bucket upper bound in seconds -> batches at or under it; /metrics exports it as is.
        self.batch_buckets = {str(b): 0 for b in BATCH_BUCKETS}
        self.batch_seconds_sum = 0.0
        self._next_beat = 0.0
        self._dirty = True

    # ------------------------------------------------------------ updates
    def batch_done(self, *, messages: int, applied: int, dead_lettered: int, refused: int,
                   seconds: float = 0.0) -> None:
        for bound in BATCH_BUCKETS:
            if seconds <= bound:
                self.batch_buckets[str(bound)] += 1
        self.batch_seconds_sum += seconds
        self.counts["batches"] += 1
        self.counts["messages"] += messages
        self.counts["applied"] += applied
        self.counts["dead_lettered"] += dead_lettered
        self.counts["refused"] += refused
        self.last_batch_at = timezone.now()
        self.set_state("running", "")

    def set_partitions(self, partitions: list[tuple[str, int]]) -> None:
        """The member's assignment changed: written with the next beat (at once)."""
        listed = [[t, p] for t, p in sorted(partitions)]
        if listed != self.partitions:
            self.partitions, self._dirty = listed, True

    def set_state(self, state: str, reason: str) -> None:
        if state != self.state or reason != self.reason:
            self.state, self.reason = state, reason[:2000]
            self._dirty = True
        if state in ("waiting", "paused", "crashed") and reason:
            self.last_error, self.last_error_at = reason[:2000], timezone.now()

    # ------------------------------------------------------------- writes
    def beat(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not (force or self._dirty or now >= self._next_beat):
            return
        if connection.in_atomic_block:  # never inside a batch's transaction: still due after it
            return
        self._next_beat = now + settings.CONSUMER_HEARTBEAT_SECONDS
        try:
            self._write()
            self._dirty = False
        except Exception as exc:  # a heartbeat must never stop the consumer
            logger.debug("consumer_heartbeat_failed consumer=%s error=%s", self.consumer, exc)
            try:
                connection.close()
            except Exception:
                pass

    def _write(self) -> None:
        from .models import ConsumerHeartbeat

        ConsumerHeartbeat.objects.update_or_create(
            consumer=self.consumer, member=self.member,
            defaults={
                "group_id": self.group_id, "topics": self.topics, "instance_id": self.instance_id,
                "partitions": self.partitions, "state": self.state, "reason": self.reason,
                "last_error": self.last_error, "last_error_at": self.last_error_at,
                "started_at": self.started_at, "beat_at": timezone.now(), "last_batch_at": self.last_batch_at,
                "batch_buckets": self.batch_buckets, "batch_seconds_sum": self.batch_seconds_sum,
                **self.counts,
            },
        )


# ---------------------------------------------------------------- reads
FAILING_STATES = ("waiting", "paused", "crashed")
# A row silent for longer is history: consumer_health and the dashboard no longer read it.
HISTORY = timedelta(days=1)

# A live process of the same consumer in another group that started before this one
# (this process's own row; now() before its first beat). Equal start times block both.
_RIVAL_SQL = """
SELECT r.group_id, r.member, r.started_at FROM {table} r
WHERE r.consumer = %(consumer)s AND r.group_id <> %(group)s AND r.state <> 'stopped'
  AND r.beat_at >= now() - make_interval(secs => %(stale)s)
  AND r.started_at <= coalesce((SELECT started_at FROM {table}
                                WHERE consumer = %(consumer)s AND member = %(member)s), now())
ORDER BY r.started_at LIMIT 1
"""


def rival_group(*, consumer: str, group: str) -> str | None:
    """Why this process must not apply now, or None: a process of `consumer` in another
    consumer group is live on this database and started first. For consumers whose
    state is shared by every group (order windows): two groups would close and count
    the same windows, each by its own watermark. The first group keeps working, the
    later one waits (its batch held, uncommitted) until the other stops beating."""
    from .models import ConsumerHeartbeat

    with connection.cursor() as cursor:
        cursor.execute(_RIVAL_SQL.format(table=ConsumerHeartbeat._meta.db_table), {
            "consumer": consumer, "group": group, "member": process_member(),
            "stale": settings.CONSUMER_HEARTBEAT_STALE_SECONDS,
        })
        row = cursor.fetchone()
    if row is None:
        return None
    rival, member, started = row
    return (f"another consumer group, {rival}, runs {consumer} on this database (process {member}, started "
            f"{started:%Y-%m-%d %H:%M:%S} UTC): its state is shared, so only one group may run it; stop that "
            f"group or this one")


def member_entry(row: Any, *, now: datetime) -> dict[str, Any]:
    """One process (a ConsumerHeartbeat row) as consumer_health and the operations pages
    describe it: `live` when it beat within CONSUMER_HEARTBEAT_STALE_SECONDS (a live member
    must also not have stopped: member_is_live); its partitions as (topic, partition) pairs."""
    stale = timedelta(seconds=settings.CONSUMER_HEARTBEAT_STALE_SECONDS)
    return {
        "member": row.member, "group_id": row.group_id, "instance_id": row.instance_id,
        "partitions": [(str(topic), int(partition)) for topic, partition in row.partitions or []],
        "state": row.state, "live": now - row.beat_at <= stale, "reason": row.reason,
        "beat_age_s": round((now - row.beat_at).total_seconds(), 1),
        "last_batch_at": row.last_batch_at.isoformat() if row.last_batch_at else None,
        "last_error": row.last_error, "messages": row.messages, "applied": row.applied,
        "dead_lettered": row.dead_lettered,
    }


def member_is_live(entry: dict[str, Any]) -> bool:
    """Whether a process (a member_entry) is a live member of its group: it beat within
    CONSUMER_HEARTBEAT_STALE_SECONDS and has not said it stopped. Only live members own
    partitions, and a consumer with one is running."""
    return entry["live"] and entry["state"] != "stopped"


def consumer_health(names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Per consumer: status (running, failing, stopped, not started), reason, members.

    A consumer is failing when a live member is waiting or paused, when its
    newest process crashed, or when a process that said it was running
    stopped beating. Rows older than a day are not looked at."""
    from .models import ConsumerHeartbeat

    now = timezone.now()
    rows = list(ConsumerHeartbeat.objects.filter(beat_at__gte=now - HISTORY).order_by("-beat_at"))
    result: dict[str, dict[str, Any]] = {name: {"status": "not started", "members": []} for name in names or []}
    for row in rows:
        entry = result.setdefault(row.consumer, {"status": "not started", "members": []})
        entry["members"].append(member_entry(row, now=now))
    for entry in result.values():
        members = entry["members"]
        live = [m for m in members if member_is_live(m)]
        failing = [m for m in live if m["state"] in FAILING_STATES]
        if failing:
            entry["status"], entry["reason"] = "failing", f"{failing[0]['state']}: {failing[0]['reason']}"
        elif live:
            entry["status"] = "running"
        elif members:
            newest = members[0]
            if newest["state"] == "stopped":
                entry["status"] = "stopped"
            elif newest["state"] == "crashed":
                entry["status"], entry["reason"] = "failing", f"crashed: {newest['reason']}"
            else:
                entry["status"] = "failing"
                entry["reason"] = f"no heartbeat for {newest['beat_age_s']:.0f} s (last state {newest['state']})"
    return result
