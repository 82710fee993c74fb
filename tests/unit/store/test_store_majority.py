"""The store's majority rule: quorum operations only where most known members are.

Each agent-level case here failed before the rule: a side cut off from the others
long enough to reap them answered quorum reads and writes with what it held, so
a client that moved between the sides read its own acknowledged write as absent.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import trio
import trio.testing

from gossip.core.store.majority import KnownMembers
from gossip.core.types import MemberInfo, MemberState
from gossip.runtime.store.coordinator import NoMajority, NotEnoughReplicas
from gossip.runtime.store.settings import StoreSettings
from tests.unit.store.memcluster import running, wait_until

SETTINGS = StoreSettings(partitions=8, replicas=3, sync_interval=1.0)


def member(name: str, state: MemberState) -> MemberInfo:
    return MemberInfo(name, ("10.0.0.1", 7946), state=state, incarnation=1)


def test_reaped_members_still_count_and_a_leaver_does_not() -> None:
    known = KnownMembers("a", [], expects_peers=True)
    everyone = [member(n, MemberState.ALIVE) for n in "bcde"]
    assert known.observe(everyone) == ({"b", "c", "d", "e"}, set())
    assert known.verdict(everyone).quorate
    # b and c are dead, then reaped (gone from the list): a and d, e still make 3 of 5.
    assert known.verdict(everyone[2:]).quorate
    # Cut off with one peer: 2 of 5, whether the others are dead, suspect or forgotten.
    alone = [member("b", MemberState.ALIVE), member("c", MemberState.SUSPECT)]
    known.observe(alone)
    verdict = known.verdict(alone)
    assert (verdict.seen, verdict.known, verdict.quorate) == (2, 5, False)
    assert "sees 2 of the 5 members it knows, 3 needed" in verdict.describe()
    # Two members leave gracefully: 2 of 3 is a majority again.
    left = [member("d", MemberState.LEFT), member("e", MemberState.LEFT)]
    assert known.observe(left) == (set(), {"d", "e"})
    assert known.verdict(alone + left).quorate


def test_members_whose_last_store_exchange_failed_do_not_count() -> None:
    # Found by fault runs: a side cut off from the majority saw the members across
    # the cut alive for seconds (not yet probed) and acknowledged quorum writes.
    known = KnownMembers("a", "bcde", expects_peers=True)
    everyone = [member(n, MemberState.ALIVE) for n in "bcde"]
    assert known.verdict(everyone, doubted={"c", "d"}).quorate
    assert not known.verdict(everyone, doubted={"c", "d", "e"}).quorate


def test_an_agent_that_expects_peers_is_no_majority_alone() -> None:
    assert not KnownMembers("a", [], expects_peers=True).verdict([]).quorate
    assert KnownMembers("a", [], expects_peers=False).verdict([]).quorate
    # A restart remembers who it knew (the caller stores the names).
    assert not KnownMembers("a", ["a", "b", "c"], expects_peers=False).verdict([]).quorate


async def test_a_side_cut_off_past_the_reap_time_refuses_quorum_operations(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(SETTINGS, core={"dead_reap_time": 5.0}) as c:
        stores = await c.start_all(5)
        big = {"n2", "n3", "n4"}
        # A key kept wholly on the big side: its replica set does not change there.
        key = next(
            k for k in (f"k{i}" for i in range(200)) if set(stores[0].replicas_of_key(k)) == big
        )
        await stores[0].put(key, b"v1", "quorum")
        c.net.partition([c.ip(0), c.ip(1)], [c.ip(i) for i in (2, 3, 4)])
        await wait_until(lambda: len(c.agents["n0"].members()) == 2, 120)  # reaped
        for level in ("quorum", "all"):
            with pytest.raises(NoMajority, match="sees 2 of the 5 members it knows"):
                await stores[0].put(key, b"v2", level)
            with pytest.raises(NoMajority):
                await stores[1].get(key, level)
        assert await stores[0].put("other", b"x", "one")  # `one` promises no more
        # The majority side goes on.
        assert await stores[2].put(key, b"v3", "quorum")
        assert await stores[3].get(key, "quorum") == b"v3"
        c.net.heal()
        await c.settle()
        await wait_until(lambda: stores[0].majority().quorate, 30)
        with trio.fail_after(30):
            while True:
                with contextlib.suppress(NotEnoughReplicas):
                    if await stores[0].get(key, "quorum") == b"v3":
                        break
                await trio.sleep(0.5)


async def test_known_members_survive_a_restart_alone(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with running(SETTINGS, tmp=tmp_path) as c:
        await c.start_all(3)
        await wait_until(lambda: c.stores["n1"].storage.known_members() == {"n0", "n2"}, 10)
        await c.crash("n1")
        c.net.partition([c.ip(1)], [c.ip(0), c.ip(2)])
        again = await c.start("n1")
        await trio.sleep(5)
        with pytest.raises(NoMajority, match="sees 1 of the 3 members it knows"):
            await again.get("k", "quorum")
