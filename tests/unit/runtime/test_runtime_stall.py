"""A deliberately blocked event loop: its agent must not bring false deaths, or
its own accusations, upon the healthy peers (real agents on loopback)."""

from __future__ import annotations

import pytest

from gossip.testing.stallrun import run_stall

FAST = {"probe_interval": 0.2, "probe_timeout": 0.1, "gossip_interval": 0.05, "leave_timeout": 0.5}
BLOCK_S = 0.3
"""Longer than a probe interval: every probe in flight across a block would expire."""


@pytest.mark.slow
async def test_a_stalled_agent_waits_instead_of_accusing_its_peers() -> None:
    # Control: with stall awareness off the same stall makes the agent accuse peers.
    before = await run_stall(3, BLOCK_S, 2.0, 1.0, {**FAST, "stall_awareness": False})
    assert before.healthy_suspected_by_stalled > 0
    after = await run_stall(3, BLOCK_S, 2.0, 1.0, FAST)
    assert after.healthy_failed == 0
    assert after.healthy_suspected_by_stalled == 0
    assert after.stalled_max_health > before.stalled_max_health
