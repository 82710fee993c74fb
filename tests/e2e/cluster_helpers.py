"""Helpers for end-to-end tests that run LocalCluster agents.

Rules: only processes the cluster started are signalled, by PID.
"""

from __future__ import annotations

import signal

from gossip.client.localcluster import LocalCluster


def stop_at_once(cluster: LocalCluster) -> None:
    """SIGKILL every agent of a finished test: graceful leave is tested elsewhere
    and costs seconds per cluster."""
    for agent in cluster.agents:
        agent.signal(signal.SIGKILL)
    for agent in cluster.agents:
        agent.wait(5.0)
