"""The per-member history behind `gossip why`: bounded, stamped, mergeable."""

from __future__ import annotations

import itertools

from gossip.runtime import history
from gossip.runtime.history import MemberHistory, merge_story


def test_records_carry_the_observer_its_health_and_the_wall_clock() -> None:
    clock = itertools.count(1000, 10)
    h = MemberHistory("a", lambda: next(clock), lambda: 3)
    h.record("b", "suspected", accuser="c")
    assert h.of("b") == [
        {
            "time_ms": 1000,
            "observer": "a",
            "member": "b",
            "event": "suspected",
            "observer_health": 3,
            "accuser": "c",
        }
    ]
    assert h.of("nobody") == []


def test_each_member_keeps_its_latest_records_and_the_least_recent_member_goes_first() -> None:
    h = MemberHistory("a", lambda: 0, lambda: 0)
    for i in range(history.PER_MEMBER + 5):
        h.record("b", "probe_timed_out", n=i)
    assert len(h.of("b")) == history.PER_MEMBER and h.of("b")[0]["n"] == 5
    for i in range(history.MAX_MEMBERS):
        h.record(f"m{i}", "joined")
    assert h.of("b") == [] and h.of("m0") != []


def test_stories_of_several_observers_merge_in_time_order() -> None:
    one = [{"time_ms": 5, "observer": "x"}, {"time_ms": 9, "observer": "x"}]
    two = [{"time_ms": 7, "observer": "y"}, {"time_ms": 5, "observer": "a"}]
    assert [(r["time_ms"], r["observer"]) for r in merge_story([one, two])] == [
        (5, "a"),
        (5, "x"),
        (7, "y"),
        (9, "x"),
    ]
