"""The members of a consumer group as the operations pages show them: each process of
a consumer with its instance id, host:pid, partitions, lag and state, and the
partitions of the group that no live member owns.

Selectors over what a page has read already: the processes as
`streams.kafka.heartbeat.member_entry` describes them (from `consumer_health`, or
the consumer page's own heartbeat rows) and the lag per partition the page holds
(the newest lag sample on the admin index and the consumer page, Kafka's live lag
on /admin/ops/). Nothing here asks the broker or the database.

A process is, by its heartbeat:

* `live`: it beat within CONSUMER_HEARTBEAT_STALE_SECONDS and is not stopped
  (streams.kafka.heartbeat.member_is_live); only live members own partitions;
* `gone`: silent for longer without having said it stopped (killed, lost, its
  host away): red, even while the other members run and the consumer's own
  status (/healthz) is "running"; collapsed once silent for a day (HISTORY);
* `stopped`: it said so; shown while its last beat is fresh, collapsed after;
* `replaced`: silent, and a live member has its instance id (a static member
  restarted, as `make run` and compose restart one): collapsed, not red.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from streams.kafka.heartbeat import FAILING_STATES, HISTORY, member_is_live

Partition = tuple[str, int]


def partitions_text(partitions: Iterable[Partition]) -> str:
    """`orders[0,3] payments[1]`: partitions grouped by topic, in order."""
    by_topic: dict[str, list[int]] = {}
    for topic, partition in sorted(partitions):
        by_topic.setdefault(topic, []).append(partition)
    return " ".join(f"{topic}[{','.join(map(str, numbers))}]" for topic, numbers in by_topic.items())


def lag_of(partitions: Iterable[Partition], lags: dict[Partition, int] | None) -> int | None:
    """The lag of these partitions (the ones the lag data has); None without lag data."""
    if lags is None:
        return None
    return sum(lags.get(p, 0) for p in partitions)


@dataclass
class MemberRow:
    member: str  # host:pid
    instance_id: str  # the static member's group.instance.id, "" for a dynamic member
    group_id: str
    state: str  # as its heartbeat says
    condition: str  # live, gone, stopped, replaced
    partitions: list[Partition]
    beat_age_s: float
    reason: str = ""
    lag: int | None = None
    replaced_by: str = ""
    entry: dict[str, Any] = field(default_factory=dict, repr=False)  # member_entry, for counters
    heartbeat: Any = None  # the ConsumerHeartbeat row, when the page has read it

    @property
    def label(self) -> str:
        """The instance id without its group's prefix (`1` for `console-orders-1`), or "dynamic"."""
        if not self.instance_id:
            return "dynamic"
        return self.instance_id.removeprefix(f"{self.group_id}-") or self.instance_id

    @property
    def partitions_text(self) -> str:
        """What it owns (`orders[0,3]`, "none"), or what a process no longer live last had."""
        if self.condition == "live":
            return partitions_text(self.partitions) or "none"
        return f"last had {partitions_text(self.partitions)}" if self.partitions else ""

    @property
    def last_batch_at(self) -> datetime | None:
        value = self.entry.get("last_batch_at")
        return datetime.fromisoformat(value) if value else None

    @property
    def red(self) -> bool:
        return self.condition == "gone" or (self.condition == "live" and self.state in FAILING_STATES)

    @property
    def status(self) -> str:
        """What the page says of it: its state, or gone, or whom it was replaced by."""
        if self.condition == "gone":
            return "gone"
        if self.condition == "replaced":
            return f"replaced by {self.replaced_by}"
        return self.state

    @property
    def detail(self) -> str:
        if self.condition == "gone":
            reason = f": {self.reason}" if self.reason else ""
            return f"no heartbeat for {self.beat_age_s:.0f} s (last state {self.state}{reason})"
        return self.reason


@dataclass
class GroupMembers:
    """The processes of one consumer: `shown` (live, gone, just stopped), `collapsed` (stopped
    or replaced and silent), and the partitions no live member owns, with their lag."""

    shown: list[MemberRow] = field(default_factory=list)
    collapsed: list[MemberRow] = field(default_factory=list)
    unassigned: list[Partition] = field(default_factory=list)
    unassigned_lag: int | None = None

    @property
    def gone(self) -> int:
        """The members gone within HISTORY (the shown ones)."""
        return sum(1 for m in self.shown if m.condition == "gone")

    @property
    def live(self) -> int:
        return sum(1 for m in self.shown if m.condition == "live")

    @property
    def unassigned_text(self) -> str:
        return partitions_text(self.unassigned)


def _condition(entry: dict[str, Any], live_instances: dict[str, str]) -> tuple[str, str]:
    """(condition, the live member that replaced it or "")."""
    if member_is_live(entry):
        return "live", ""
    if entry["state"] == "stopped":
        return "stopped", ""
    replacement = live_instances.get(entry["instance_id"], "") if entry["instance_id"] else ""
    return ("replaced", replacement) if replacement else ("gone", "")


def _order(row: MemberRow) -> tuple:
    """Static members by instance id (numbers first, 2 before 10), then dynamic ones by host:pid."""
    label = row.label
    return (not row.instance_id, not label.isdigit(), len(label) if label.isdigit() else 0, label, row.member)


def group_members(entries: list[dict[str, Any]], *, lags: dict[Partition, int] | None,
                  partitions: Iterable[Partition] | None = None) -> GroupMembers:
    """The member view of one consumer from its processes (`member_entry` dicts).

    `lags`: lag per (topic, partition), None when the page has no fresh lag; `partitions`:
    every partition of the group's topics (the keys of `lags` by default), to name those
    no live member owns. A process that is silent keeps the partitions it last had in its
    row, but owns none: Kafka has given them to the others, or holds them unread."""
    live_instances = {e["instance_id"]: e["member"] for e in entries if member_is_live(e) and e["instance_id"]}
    view = GroupMembers()
    owned: set[Partition] = set()
    for entry in entries:
        condition, replaced_by = _condition(entry, live_instances)
        row = MemberRow(
            member=entry["member"], instance_id=entry["instance_id"], group_id=entry["group_id"],
            state=entry["state"], condition=condition, partitions=list(entry["partitions"]),
            beat_age_s=entry["beat_age_s"], reason=entry["reason"], replaced_by=replaced_by, entry=entry,
        )
        if condition == "live":
            owned.update(row.partitions)
            row.lag = lag_of(row.partitions, lags)
        shown = (condition == "live" or (condition == "stopped" and entry["live"])
                 or (condition == "gone" and entry["beat_age_s"] <= HISTORY.total_seconds()))
        (view.shown if shown else view.collapsed).append(row)
    view.shown.sort(key=_order)
    view.collapsed.sort(key=_order)
    every = set(partitions if partitions is not None else (lags or {}))
    view.unassigned = sorted(every - owned) if entries else []
    view.unassigned_lag = lag_of(view.unassigned, lags) if view.unassigned else None
    return view
