"""Token notes reach a member cut off for longer than a few retries, or declared dead.

Found by fault runs: in seed 141 a one-way cut of 11 s outlasted the three retries (1, 2
and 4 s); in seed 77 the recipient was declared dead behind a cut. Either way the note was
dropped, and the rightful owner went on fencing with a token below the one the other side
had issued meanwhile.
"""

from __future__ import annotations

from typing import Any, cast

import trio
import trio.testing

from gossip.core.ownership.assignment import TokenNote
from gossip.core.types import MemberInfo, MemberState
from gossip.runtime.metrics import Registry
from gossip.runtime.ownership.notes import GIVE_UP_S, NoteSender, decode_notes
from gossip.runtime.service import ServiceHost, StreamError


class CutHost:
    def __init__(self, cut_until: float) -> None:
        self.metrics = Registry()
        self.cut_until = cut_until
        self.delivered: list[tuple[float, list[tuple[str, int]]]] = []
        self.state = MemberState.ALIVE
        self.got = trio.Event()

    def member(self, name: str) -> MemberInfo:
        return MemberInfo(name, ("10.0.0.2", 7946), self.state, 1)

    async def request(self, address: Any, channel: str, body: bytes) -> bytes:
        if trio.current_time() < self.cut_until:
            raise StreamError("timeout")
        self.delivered.append((trio.current_time(), decode_notes(body)))
        self.got.set()
        return b""


async def test_a_note_is_retried_until_a_long_cut_heals(
    autojump_clock: trio.testing.MockClock,
) -> None:
    host = CutHost(cut_until=30.0)
    sender = NoteSender(cast(ServiceHost, host))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender.run)
        sender.post(TokenNote("n2", "item-1", 42))
        with trio.fail_after(60):
            await sender.wait_idle()
        nursery.cancel_scope.cancel()
    assert [pairs for _, pairs in host.delivered] == [[("item-1", 42)]]
    assert 30.0 <= host.delivered[0][0] < 40.0


def batches(sender: NoteSender, result: str) -> float:
    return sender._batches.value({"result": result})


async def test_a_note_to_a_member_declared_dead_is_kept_until_it_is_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Seed 77: the new owner saw the old one alive by gossip while it was cut off; the
    note timed out until the old owner was declared dead, and it must still arrive."""
    host = CutHost(cut_until=1e9)
    sender = NoteSender(cast(ServiceHost, host))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender.run)
        sender.post(TokenNote("n2", "item-1", 42))
        await trio.sleep(20)
        host.state = MemberState.DEAD
        sender.member_changed()
        with trio.fail_after(20):
            await sender.wait_idle()  # a kept note does not hold up a graceful leave
        await trio.sleep(100)
        assert host.delivered == []
        back = trio.current_time()
        host.cut_until = 0.0
        host.state = MemberState.ALIVE
        sender.member_changed()
        with trio.fail_after(20):
            await host.got.wait()
        nursery.cancel_scope.cancel()
    assert [pairs for _, pairs in host.delivered] == [[("item-1", 42)]]
    assert host.delivered[0][0] - back < 1.0  # at once, not at the next retry
    assert (batches(sender, "sent"), batches(sender, "failed")) == (1.0, 0.0)


async def test_a_note_to_a_member_that_left_is_dropped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    host = CutHost(cut_until=1e9)
    sender = NoteSender(cast(ServiceHost, host))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender.run)
        sender.post(TokenNote("n2", "item-1", 42))
        await trio.sleep(20)
        host.state = MemberState.LEFT
        with trio.fail_after(20):
            await sender.wait_idle()
        nursery.cancel_scope.cancel()
    assert host.delivered == []
    assert batches(sender, "failed") == 1.0


async def test_a_note_kept_for_a_dead_member_is_dropped_when_the_time_is_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    host = CutHost(cut_until=0.0)
    host.state = MemberState.DEAD
    sender = NoteSender(cast(ServiceHost, host))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender.run)
        sender.post(TokenNote("n2", "item-1", 42))
        await trio.sleep(GIVE_UP_S + 1)
        assert batches(sender, "failed") == 1.0
        host.state = MemberState.ALIVE
        sender.member_changed()
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert host.delivered == []
