"""Joining: retries with backoff, rejoin when alone, the advertised address."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import trio
import trio.testing

from gossip.core.types import MemberInfo, MemberState
from gossip.runtime import joiner


@dataclass
class _Cfg:
    reconnect_interval: float = 30.0


@dataclass
class FakeAgent:
    name: str = "me"
    others_alive: bool = False
    leaving: bool = False
    join_at_attempt: int = 3
    config: _Cfg = field(default_factory=_Cfg)
    joined: trio.Event = field(default_factory=trio.Event)
    attempts: list[float] = field(default_factory=list)

    def members(self) -> list[MemberInfo]:
        me = [MemberInfo("me", ("127.0.0.1", 1), MemberState.ALIVE, 1)]
        other = MemberInfo("x", ("127.0.0.1", 2), MemberState.ALIVE, 1)
        return me + ([other] if self.others_alive else [])

    async def join(self, seeds: Sequence[str]) -> int:
        self.attempts.append(trio.current_time())
        if len(self.attempts) >= self.join_at_attempt:
            self.joined.set()
            self.others_alive = True
        return len(seeds)


async def test_joins_are_retried_with_growing_backoff_until_joined(
    autojump_clock: trio.testing.MockClock,
) -> None:
    agent = FakeAgent(join_at_attempt=4)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(joiner.join_until_joined, agent, ["127.0.0.1:1"])
        await agent.joined.wait()
        nursery.cancel_scope.cancel()
    gaps = [b - a for a, b in zip(agent.attempts, agent.attempts[1:], strict=False)]
    assert len(agent.attempts) == 4
    assert gaps[-1] > joiner.JOIN_BACKOFF_MIN  # backed off
    assert all(g <= 1.5 * joiner.JOIN_BACKOFF_MAX for g in gaps)


async def test_a_node_left_alone_rejoins_its_seeds(autojump_clock: trio.testing.MockClock) -> None:
    agent = FakeAgent(join_at_attempt=1, others_alive=True)
    agent.joined.set()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(joiner.join_until_joined, agent, ["127.0.0.1:1"])
        await trio.sleep(100)
        assert agent.attempts == []  # others alive: nothing to do
        agent.others_alive = False
        agent.join_at_attempt = 99
        await trio.sleep(3 * agent.config.reconnect_interval)
        assert len(agent.attempts) >= 2
        nursery.cancel_scope.cancel()


def test_the_advertised_address_is_the_bind_address_unless_wildcard() -> None:
    assert joiner.advertise_address(("10.1.2.3", 7946)) == ("10.1.2.3", 7946)
    assert joiner.advertise_address(("::1", 7946)) == ("::1", 7946)
    host, port = joiner.advertise_address(("0.0.0.0", 7946))
    assert port == 7946 and host != "0.0.0.0" and ":" not in host
    host, port = joiner.advertise_address(("::", 7946))
    assert port == 7946 and host not in ("::", "0.0.0.0")
