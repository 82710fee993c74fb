"""The ownership quorum: a majority of the last known membership, the hold, direct checks."""

from __future__ import annotations

from gossip.core.ownership.assignment import Ownership
from gossip.core.ownership.quorum import Quorum
from gossip.core.types import MemberInfo, MemberState
from tests.unit.ownership.test_ownership import (
    ALIVE,
    COALESCE,
    DEAD,
    ITEMS,
    LEFT,
    SETTLE,
    SUSPECT,
    acquired,
    released,
    run_until,
    view,
)

FIVE = ["a", "b", "c", "d", "e"]


def members(states: dict[str, MemberState]) -> dict[str, MemberInfo]:
    return {m.name: m for m in view(states) if m.name != "a"}


def test_a_majority_of_the_last_known_membership_must_be_alive_and_in_the_table() -> None:
    q = Quorum("a", probe_interval=1.0)
    assert not q.update(0.0, [], {}), "nothing before this node is in a table"
    assert q.update(0.0, FIVE, members(dict.fromkeys(FIVE, ALIVE)))
    assert q.known == set(FIVE)
    cut = members({"a": ALIVE, "b": ALIVE, "c": SUSPECT, "d": ALIVE, "e": SUSPECT})
    assert q.update(1.0, FIVE, cut), "3 of 5: a suspect does not count, the rest do"
    cut = members({"a": ALIVE, "b": ALIVE, "c": SUSPECT, "d": SUSPECT, "e": DEAD})
    assert not q.update(2.0, FIVE, cut) and q.known == set(FIVE)
    assert not q.update(3.0, ["a", "b"], cut), "a table that lost them does not shrink M"
    assert q.known == set(FIVE)


def test_m_shrinks_only_outside_a_hold_and_a_graceful_leaver_leaves_at_once() -> None:
    q = Quorum("a", probe_interval=1.0)
    q.update(0.0, FIVE, members(dict.fromkeys(FIVE, ALIVE)))
    dead_e = members({"a": ALIVE, "b": ALIVE, "c": ALIVE, "d": ALIVE, "e": DEAD})
    q.hold(10.0)
    assert q.holding(19.9) and not q.holding(20.0), "2 x |M| probe intervals"
    assert q.update(12.0, FIVE[:4], dead_e) and q.known == set(FIVE)
    assert q.update(20.0, FIVE[:4], dead_e) and q.known == set(FIVE[:4])
    left_d = members({"a": ALIVE, "b": SUSPECT, "c": SUSPECT, "d": LEFT})
    q.hold(21.0)
    assert not q.update(21.0, FIVE[:4], left_d), "1 of a, b, c"
    assert q.known == {"a", "b", "c"}, "d left gracefully: out of M at once, hold or not"


def test_members_that_miss_a_direct_check_do_not_count_until_all_look_alive_again() -> None:
    q = Quorum("a", probe_interval=1.0)
    everyone = members(dict.fromkeys(FIVE, ALIVE))
    q.update(0.0, FIVE, everyone)
    doubt = members({"a": ALIVE, "b": ALIVE, "c": SUSPECT, "d": ALIVE, "e": ALIVE})
    assert q.doubt(doubt) and not q.doubt(everyone)
    q.reached(["b", "c", "d", "e"], ["b"])
    assert not q.update(1.0, FIVE, doubt), "only a and b answered"
    assert q.update(2.0, FIVE, everyone), "no doubt left: the check's verdict is dropped"


def test_takeovers_wait_while_a_member_of_m_settles_again() -> None:
    q = Quorum("a", probe_interval=1.0)
    q.update(0.0, FIVE, members(dict.fromkeys(FIVE, ALIVE)))
    assert q.judge(0.0, FIVE, members(dict.fromkeys(FIVE, ALIVE))) == "gained"
    back = members(dict.fromkeys(FIVE, ALIVE))
    assert not q.may_take(1.0, FIVE[:4], back), "e is alive but not in the table yet"
    assert q.may_take(1.0, FIVE, back)


def quorum_node(name: str) -> Ownership:
    o = Ownership(
        name,
        settle_time=SETTLE,
        coalesce_time=COALESCE,
        partitions=1 << 12,
        items=ITEMS,
        quorum=True,
        probe_interval=1.0,
    )
    o.observe(0.0, view(dict.fromkeys(FIVE, ALIVE)))
    run_until(o, 0.0, SETTLE + COALESCE)
    return o


def test_a_minority_node_releases_everything_and_takes_nothing_over() -> None:
    o = quorum_node("a")
    held = set(acquired(o.take_outputs()))
    assert held and o.quorate
    o.observe(10.0, view({"a": ALIVE, "b": ALIVE, "c": SUSPECT, "d": SUSPECT, "e": ALIVE}))
    assert o.take_outputs() == [] and o.quorate, "3 of 5 still"
    o.observe(11.0, view({"a": ALIVE, "b": ALIVE, "c": SUSPECT, "d": SUSPECT, "e": SUSPECT}))
    lost = released(o.take_outputs())
    assert set(lost) == held and {r.reason for r in lost.values()} == {"quorum_lost"}
    o.observe(20.0, view({"a": ALIVE, "b": ALIVE, "c": DEAD, "d": DEAD, "e": DEAD}))
    run_until(o, 20.0, 60.0)
    assert o.held() == {} and acquired(o.take_outputs()) == {}


def test_a_majority_node_takes_over_only_after_the_hold() -> None:
    o = quorum_node("a")
    o.take_outputs()
    o.observe(10.0, view({"a": ALIVE, "b": ALIVE, "c": ALIVE, "d": DEAD, "e": DEAD}))
    run_until(o, 10.0, 10.0 + COALESCE + 9.9)
    assert acquired(o.take_outputs()) == {}, "holding: 2 x 5 probe intervals"
    run_until(o, 10.0 + COALESCE + 9.9, 10.0 + COALESCE + 10.0)
    got = acquired(o.take_outputs())
    assert got and {e.reason for e in got.values()} == {"owner_failed"}
    assert o.known_members == {"a", "b", "c"}


def test_the_items_come_back_when_the_majority_has_settled_again() -> None:
    o = quorum_node("a")
    mine = set(acquired(o.take_outputs()))
    o.observe(10.0, view({"a": ALIVE, "b": ALIVE, "c": DEAD, "d": DEAD, "e": DEAD}))
    run_until(o, 10.0, 30.0)
    assert o.held() == {} and not o.quorate
    o.observe(30.0, view(dict.fromkeys(FIVE, ALIVE)))
    run_until(o, 30.0, 30.0 + SETTLE - 0.1)
    assert acquired(o.take_outputs()) == {}, "not before c, d and e are in the table again"
    run_until(o, 30.0 + SETTLE - 0.1, 30.0 + SETTLE + COALESCE)
    got = acquired(o.take_outputs())
    assert set(got) == mine and {e.reason for e in got.values()} == {"quorum_regained"}
