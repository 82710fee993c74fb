"""gossip: a leaderless peer-to-peer agent for fault tolerance without a central server.

The library API for trio programs (imported lazily, so `gossip --version` stays light):

    async with gossip.open_agent(gossip.AgentSettings(name="a", join=("10.0.0.1:7946",))) as agent:
        agent.members()
        async for event in agent.subscribe(): ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from gossip.runtime.agent import Agent
    from gossip.runtime.embed import open_agent
    from gossip.runtime.service import MemberEvent, Service
    from gossip.runtime.settings import AgentSettings

_LAZY = {
    "Agent": "gossip.runtime.agent",
    "open_agent": "gossip.runtime.embed",
    "MemberEvent": "gossip.runtime.service",
    "Service": "gossip.runtime.service",
    "AgentSettings": "gossip.runtime.settings",
}

__all__ = ["Agent", "AgentSettings", "MemberEvent", "Service", "__version__", "open_agent"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gossip' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
