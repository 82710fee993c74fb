"""Roots checks by datagram: replicas that agree compare roots without opening a
stream, a check too big for one datagram still goes by stream, and stores still
converge either way. Real agents on the in-memory network in virtual time."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from gossip.runtime.metrics import Counter
from gossip.runtime.settings import SettingsError
from gossip.runtime.store.settings import StoreSettings, from_sources
from gossip.runtime.store.sync import ROOTS_CHANNEL
from tests.unit.store.memcluster import MemCluster, running, wait_until


def roots_streams_opened(c: MemCluster) -> float:
    total = 0.0
    for agent in c.agents.values():
        metric = agent.metrics.get("streams_total")
        assert isinstance(metric, Counter)
        total += metric.value({"channel": ROOTS_CHANNEL, "direction": "out"})
    return total


async def test_replicas_that_agree_compare_roots_by_datagram_and_open_no_stream(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(
        StoreSettings(partitions=16, sync_interval=0.5, roots_by_datagram=True)
    ) as c:
        stores = await c.start_all(3)
        await stores[0].put("k", b"v")
        await wait_until(lambda: len(c.holders("k")) == 3 and c.digests_agree(), 30)
        await trio.sleep(5)  # every partition filled everywhere
        streams = roots_streams_opened(c)
        answered = [s.sync.by_datagram.answered for s in stores]
        await trio.sleep(10)  # about 20 rounds per agent
        assert roots_streams_opened(c) == streams
        assert all(s.sync.by_datagram.answered > a for s, a in zip(stores, answered, strict=True))


async def test_turned_off_roots_checks_go_by_stream(autojump_clock: trio.testing.MockClock) -> None:
    off = StoreSettings(partitions=16, sync_interval=0.5, roots_by_datagram=False)
    async with running(off) as c:
        stores = await c.start_all(3)
        streams = roots_streams_opened(c)
        await trio.sleep(5)
        assert roots_streams_opened(c) > streams
        assert all(s.sync.by_datagram.asked == 0 for s in stores)


async def test_a_roots_check_too_big_for_a_datagram_goes_by_stream(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(
        StoreSettings(partitions=512, sync_interval=0.5, roots_by_datagram=True)
    ) as c:
        stores = await c.start_all(3)
        await stores[0].put("k", b"v")
        await wait_until(lambda: len(c.holders("k")) == 3 and c.digests_agree(), 30)
        streams = roots_streams_opened(c)
        rounds = sum(s.sync.rounds for s in stores)
        await trio.sleep(5)
        # Each round, the fellow that comes first gets all 512 partitions (by stream);
        # the other gets a check without roots, which fits a datagram.
        assert roots_streams_opened(c) - streams >= sum(s.sync.rounds for s in stores) - rounds
        assert sum(s.sync.rounds for s in stores) - rounds >= 15


def test_the_setting_takes_only_a_boolean() -> None:
    assert from_sources({"roots_by_datagram": True}, None).roots_by_datagram is True
    with pytest.raises(SettingsError, match="roots_by_datagram"):
        from_sources({"roots_by_datagram": "false"}, None)
