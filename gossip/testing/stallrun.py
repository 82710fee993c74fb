"""A blocked event loop beside healthy agents on loopback: who gets accused of what.

Rules: the healthy agents share the caller's trio loop; one more agent runs in
a thread with a trio loop of its own, where a service blocks that loop
(time.sleep, as a careless synchronous call or a starved host would) in chunks
of `block_s` with one checkpoint between them, for `stall_s` seconds. Every
agent's membership events are collected from the moment the blocking starts
until `settle_s` after it ends; the report counts suspicions and failures of
healthy members (false by construction), those of the stalled agent, and the
stalled agent's highest health score. Real sockets and real time: its figures
belong in benchmarks, a test asserts only what the protocol promises.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import trio

from gossip.core.types import Address, MemberState
from gossip.runtime.agent import Agent
from gossip.runtime.embed import open_agent
from gossip.runtime.service import MemberEvent, Service
from gossip.runtime.settings import AgentSettings

STALLED = "stalled"
JOIN_LIMIT_S = 20.0


@dataclass(frozen=True)
class StallReport:
    healthy_suspected: int
    """Suspicions of healthy members, by any observer."""
    healthy_suspected_by_stalled: int
    healthy_failed: int
    """Failure verdicts on healthy members, by any observer."""
    stalled_suspected: int
    stalled_failed: int
    stalled_max_health: int


class LoopBlocker(Service):
    """Blocks its agent's event loop in chunks while `active` is set; records the
    agent's events and its highest health score (from the agent's thread)."""

    name = "loop-blocker"

    def __init__(self, block_s: float) -> None:
        self.block_s = block_s
        self.active = threading.Event()
        self.events: list[MemberEvent] = []

    def member_event(self, event: MemberEvent) -> None:
        self.events.append(event)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            if self.active.is_set():
                time.sleep(self.block_s)  # noqa: ASYNC251 - the stall is the point
                await trio.lowlevel.checkpoint()
            else:
                await trio.sleep(0.01)


async def run_stall(
    healthy: int,
    block_s: float,
    stall_s: float,
    settle_s: float,
    core: Mapping[str, Any],
) -> StallReport:
    """One run: `healthy` agents plus the stalled one, all with `core` overrides
    (the local profile underneath)."""
    events: list[tuple[str, MemberEvent]] = []
    blocker = LoopBlocker(block_s)
    stop = threading.Event()
    health = [0]
    async with AsyncExitStack() as stack:
        agents: list[Agent] = []
        for i in range(healthy):
            join = (_seed(agents[0].address),) if agents else ()
            agent = await stack.enter_async_context(open_agent(_settings(f"h{i}", join, core)))
            agents.append(agent)
        nursery = await stack.enter_async_context(trio.open_nursery())
        for agent in agents:
            nursery.start_soon(_collect, agent, events)
        started: queue.Queue[str] = queue.Queue()
        stalled = _settings(STALLED, (_seed(agents[0].address),), core)
        thread = threading.Thread(
            target=_run_stalled, args=(stalled, blocker, started, stop, health), daemon=True
        )
        thread.start()
        try:
            await trio.to_thread.run_sync(started.get, True, JOIN_LIMIT_S)
            names = {a.name for a in agents} | {STALLED}
            with trio.fail_after(JOIN_LIMIT_S):
                while not all(_sees_alive(a, names) for a in agents):  # noqa: ASYNC110
                    await trio.sleep(0.05)
            mark = len(events), len(blocker.events)
            health[0] = 0
            blocker.active.set()
            await trio.sleep(stall_s)
            blocker.active.clear()
            await trio.sleep(settle_s)
            seen = events[mark[0] :] + [(STALLED, e) for e in blocker.events[mark[1] :]]
        finally:
            blocker.active.clear()
            stop.set()
            await trio.to_thread.run_sync(thread.join, JOIN_LIMIT_S)
        nursery.cancel_scope.cancel()
    return _report(seen, health[0])


def _report(seen: list[tuple[str, MemberEvent]], max_health: int) -> StallReport:
    def count(kind: str, stalled: bool, accuser: str | None = None) -> int:
        return sum(
            1
            for _, e in seen
            if e.kind == kind
            and (e.name == STALLED) == stalled
            and (accuser is None or e.detail.get("accuser") == accuser)
        )

    return StallReport(
        healthy_suspected=count("suspected", False),
        healthy_suspected_by_stalled=count("suspected", False, STALLED),
        healthy_failed=count("failed", False),
        stalled_suspected=count("suspected", True),
        stalled_failed=count("failed", True),
        stalled_max_health=max_health,
    )


def _run_stalled(
    settings: AgentSettings,
    blocker: LoopBlocker,
    started: queue.Queue[str],
    stop: threading.Event,
    health: list[int],
) -> None:
    async def main() -> None:
        async with open_agent(settings, services=[blocker]) as agent:
            started.put(agent.name)
            while not stop.is_set():
                health[0] = max(health[0], agent.health)
                await trio.sleep(0.02)

    trio.run(main)


async def _collect(agent: Agent, into: list[tuple[str, MemberEvent]]) -> None:
    async with agent.subscribe(maxsize=100_000) as sub:
        async for event in sub:
            into.append((agent.name, event))


def _sees_alive(agent: Agent, names: set[str]) -> bool:
    return {m.name for m in agent.members() if m.state == MemberState.ALIVE} == names


def _settings(name: str, join: tuple[str, ...], core: Mapping[str, Any]) -> AgentSettings:
    return AgentSettings(
        name=name, bind=("127.0.0.1", 0), api=None, profile="local", core=dict(core), join=join
    )


def _seed(address: Address) -> str:
    return f"{address[0]}:{address[1]}"  # always 127.0.0.1 here
