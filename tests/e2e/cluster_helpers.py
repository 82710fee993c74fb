"""Helpers for end-to-end tests that run LocalCluster agents.

Rules: only processes the cluster started are signalled, by PID.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from gossip.client.localcluster import LocalCluster


def logged(path: Path, event: str) -> list[dict[str, Any]]:
    """The JSON log lines of one event in an agent's log (other lines skipped)."""
    found = []
    for raw in path.read_text().splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict) and line.get("event") == event:
            found.append(line)
    return found


def stop_at_once(cluster: LocalCluster) -> None:
    """SIGKILL every agent of a finished test: graceful leave is tested elsewhere
    and costs seconds per cluster."""
    for agent in cluster.agents:
        agent.signal(signal.SIGKILL)
    for agent in cluster.agents:
        agent.wait(5.0)
