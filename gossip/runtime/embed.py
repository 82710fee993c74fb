"""`open_agent`: run an Agent inside a trio program.

Rules: the agent runs in a nursery owned by the context manager; leaving the
block leaves the cluster gracefully (bounded by the leave timeout, shielded so
it also happens on cancellation) and then stops the agent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import trio

from gossip.runtime.agent import Agent
from gossip.runtime.clock import WallClock
from gossip.runtime.network import Network
from gossip.runtime.seeds import Resolver
from gossip.runtime.service import Service
from gossip.runtime.settings import AgentSettings
from gossip.security.sealing import Sealer


@asynccontextmanager
async def open_agent(
    settings: AgentSettings,
    *,
    services: Iterable[Service] = (),
    sealer: Sealer | None = None,
    network: Network | None = None,
    clock: WallClock | None = None,
    leave_on_exit: bool = True,
    resolver: Resolver | None = None,
) -> AsyncIterator[Agent]:
    agent = Agent(settings, network=network, sealer=sealer, clock=clock, resolver=resolver)
    for service in services:
        agent.add_service(service)
    async with trio.open_nursery() as nursery:
        await nursery.start(agent.serve)
        try:
            yield agent
        finally:
            if leave_on_exit:
                with (
                    trio.CancelScope(shield=True),
                    trio.move_on_after(agent.config.leave_timeout + 2.0),
                ):
                    await agent.leave()
            agent.stop()
