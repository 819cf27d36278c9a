"""The members of a consumer group as the operations pages show them (console/ops/members.py):
pure logic over heartbeat entries and lag per partition, no service."""

from __future__ import annotations

from console.ops.members import group_members, partitions_text

GROUP = "console-orders"


def entry(member: str, instance: str = "", partitions=(), *, live: bool = True, state: str = "running",
          age: float = 1.0, reason: str = "") -> dict:
    return {"member": member, "group_id": GROUP, "instance_id": f"{GROUP}-{instance}" if instance else "",
            "partitions": [("orders", p) for p in partitions], "state": state, "live": live, "reason": reason,
            "beat_age_s": age, "last_batch_at": None, "messages": 0, "dead_lettered": 0}


LAGS = {("orders", p): lag for p, lag in enumerate([5, 7, 11, 13])}


def test_partitions_read_as_topic_and_numbers():
    assert partitions_text([("payments", 1), ("orders", 3), ("orders", 0)]) == "orders[0,3] payments[1]"
    assert partitions_text([]) == ""


def test_live_members_own_their_partitions_and_their_lag():
    view = group_members([entry("a:1", "0", [0, 3]), entry("b:2", "1", [1, 2])], lags=LAGS)
    a, b = view.shown
    assert (a.label, a.partitions_text, a.lag, a.status, a.red) == ("0", "orders[0,3]", 18, "running", False)
    assert (b.label, b.partitions_text, b.lag) == ("1", "orders[1,2]", 18)
    assert view.unassigned == [] and view.live == 2 and view.gone == 0


def test_a_silent_member_is_gone_and_its_partitions_unassigned_while_the_others_run():
    view = group_members([entry("a:1", "0", [0, 3]), entry("b:2", "1", [1]),
                          entry("c:3", "2", [2], live=False, age=95.4)], lags=LAGS)
    gone = next(m for m in view.shown if m.member == "c:3")
    assert (gone.status, gone.red, gone.lag) == ("gone", True, None)
    assert gone.detail == "no heartbeat for 95 s (last state running)"
    assert gone.partitions_text == "last had orders[2]"
    assert (view.gone, view.live) == (1, 2)
    assert view.unassigned == [("orders", 2)] and view.unassigned_text == "orders[2]" and view.unassigned_lag == 11


def test_a_restarted_static_member_replaces_its_silent_row_and_stopped_ones_collapse():
    view = group_members([
        entry("a:9", "0", [0, 1, 2, 3]),
        entry("a:1", "0", [0, 1], live=False, age=300),  # instance 0 before its restart
        entry("d:4", partitions=[2], live=False, state="stopped", age=600),
        entry("e:5", state="stopped"),  # stopped a moment ago: still shown, owns nothing
        entry("f:6", "3", live=False, age=2 * 86400),  # gone, two days ago: history
    ], lags=LAGS)
    assert [m.member for m in view.shown] == ["a:9", "e:5"]
    assert {m.member: m.status for m in view.collapsed} == {"a:1": "replaced by a:9", "d:4": "stopped", "f:6": "gone"}
    assert view.gone == 0 and view.unassigned == []
    assert not any(m.red for m in view.collapsed if m.member != "f:6")


def test_without_fresh_lag_members_have_none_and_partitions_still_name_the_unassigned():
    view = group_members([entry("a:1", "0", [0])], lags=None, partitions=list(LAGS))
    assert view.shown[0].lag is None and view.unassigned_lag is None
    assert view.unassigned_text == "orders[1,2,3]"
    assert group_members([], lags=LAGS).unassigned == []  # no process ever: nothing to say


def test_members_are_in_instance_order_then_dynamic_ones():
    view = group_members([entry("z:1"), entry("b:1", "10"), entry("a:1", "2"), entry("c:1", "waiting", state="waiting",
                                                                                   reason="PostgreSQL away")],
                         lags={})
    assert [m.label for m in view.shown] == ["2", "10", "waiting", "dynamic"]
    assert view.shown[2].red and view.shown[2].detail == "PostgreSQL away"
