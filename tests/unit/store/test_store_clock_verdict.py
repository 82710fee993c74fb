"""The store clock's kept verdict: it changes exactly when a fresh computation would."""

from __future__ import annotations

import trio
import trio.testing

from gossip.core.store.clocksync import ClockAgreement
from gossip.runtime.store.storeclock import StoreClock

MAX_AGE = 60.0


class Peers:
    """The live peer set as the store view hands it out: a new object on each change."""

    def __init__(self, *names: str) -> None:
        self.now: frozenset[str] = frozenset(names)


def clock(peers: Peers) -> StoreClock:
    return StoreClock(lambda: 1_000_000, lambda: peers.now, max_offset_ms=500, max_age=MAX_AGE)


def test_no_reading_is_stable_forever_and_the_oldest_reading_bounds_the_rest() -> None:
    agreement = ClockAgreement(500, MAX_AGE)
    assert agreement.stable_until() == float("inf")
    agreement.observe("b", 0, 10.0)
    agreement.observe("c", 0, 4.0)
    assert agreement.stable_until() == 4.0 + MAX_AGE


async def test_a_kept_trust_ends_the_moment_its_only_reading_goes_stale(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store_clock = clock(Peers("b"))
    store_clock.measured("b", store_clock.raw_ms())
    assert store_clock.refusal() is None
    await trio.sleep(MAX_AGE - 0.001)
    assert store_clock.refusal() is None
    await trio.sleep(0.002)
    assert store_clock.refusal() == "clock not yet checked against any live peer"


async def test_a_new_live_peer_set_is_judged_again_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    peers = Peers("b")
    store_clock = clock(peers)
    store_clock.measured("b", store_clock.raw_ms())
    assert store_clock.refusal() is None
    peers.now = frozenset({"c"})  # b went away, c has not been measured yet
    assert store_clock.refusal() == "clock not yet checked against any live peer"
    store_clock.measured("c", store_clock.raw_ms() + 60_000)  # a minute apart: no majority
    assert store_clock.refusal() is not None
    assert "a majority needed" in (store_clock.refusal() or "")


async def test_the_start_grace_refuses_until_it_ends_then_trusts_the_anchor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store_clock = clock(Peers())
    store_clock.started(expect_peers=True, grace=5.0)
    assert store_clock.refusal() is not None
    await trio.sleep(4.9)
    assert store_clock.refusal() is not None
    await trio.sleep(0.2)
    assert store_clock.refusal() is None
