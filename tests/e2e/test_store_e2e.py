"""Five real agents, R = 3: a replica killed with -9 mid-traffic comes back whole.

Writes and deletes are acknowledged at quorum; after the killed replica
restarts from its data dir, every replica must report equal Merkle roots
within a bound, every acknowledged write must read back at consistency=all,
and no deleted key may come back (also not on the restarted node itself).
"""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path

import pytest

from gossip.client.kv import key_path, request
from gossip.client.localcluster import AgentProcess, LocalCluster

pytestmark = pytest.mark.e2e
CONVERGE_S = 60.0


def write(agent: AgentProcess, method: str, key: str, value: bytes = b"") -> str | None:
    """PUT or DELETE at quorum; the acknowledged version ("wall.counter@node") or None."""
    body = value if method == "PUT" else None
    status, _, raw = request(agent.api(), method, key_path(key, consistency="quorum"), body)
    if status != 200:
        print(f"{method} {key} via {agent.name}: HTTP {status} {raw[:300]!r}")
        return None
    version: str = json.loads(raw)["version"]
    return version


def order(version: str) -> tuple[int, int, str]:
    stamp, _, node = version.partition("@")
    wall, _, counter = stamp.partition(".")
    return int(wall), int(counter), node


def digests(cluster: LocalCluster) -> dict[str, dict[str, str]]:
    """partition -> {node: root} over the replicas that claim the partition."""
    out: dict[str, dict[str, str]] = {}
    for a in cluster.agents:
        status, _, raw = request(a.api(), "GET", "/v1/kv-digest")
        if status != 200:
            return {}
        for part, info in json.loads(raw)["partitions"].items():
            if info["replica"]:
                out.setdefault(part, {})[a.name] = info["root"]
    return out


def converged(cluster: LocalCluster, replicas: int) -> bool:
    roots = digests(cluster)
    return bool(roots) and all(
        len(by_node) == replicas and len(set(by_node.values())) == 1 for by_node in roots.values()
    )


def test_a_killed_replica_rejoins_without_losing_or_resurrecting_keys(tmp_path: Path) -> None:
    rng = random.Random(5)
    with LocalCluster(5, tmp_path, extra_args=["--kv-sync-interval", "0.5"]) as cluster:
        cluster.start()
        cluster.wait_all_alive(timeout=30)
        agents = cluster.agents
        # key -> (version, value or None for deleted) of the latest acknowledged write
        acked: dict[str, tuple[str, bytes | None]] = {}
        uncertain: set[str] = set()  # a write that failed may still have landed somewhere

        def note(key: str, version: str | None, value: bytes | None) -> None:
            if version is None:
                uncertain.add(key)
            elif key not in acked or order(version) > order(acked[key][0]):
                acked[key] = (version, value)

        for i in range(1000):
            key, value = f"k{i:04d}", b"v1-%d" % i
            note(key, write(agents[i % 5], "PUT", key, value), value)

        victim = agents[2]
        victim.signal(signal.SIGKILL)
        victim.wait(5)
        others = [a for a in agents if a is not victim]
        keys = sorted(acked)
        for j in range(300):
            coordinator, key = others[j % 4], rng.choice(keys)
            if j % 3 == 0:
                note(key, write(coordinator, "DELETE", key), None)
            else:
                note(key, write(coordinator, "PUT", key, b"v2-%d" % j), b"v2-%d" % j)
        for j in range(200):
            note(f"new{j:03d}", write(others[j % 4], "PUT", f"new{j:03d}", b"n"), b"n")
        deleted = {k for k, (_, v) in acked.items() if v is None}
        assert len(deleted) > 50 and len(uncertain) < 20

        t0 = time.monotonic()
        victim.start()
        cluster.wait_all_alive(timeout=30)
        cluster.wait_until(lambda: converged(cluster, 3), CONVERGE_S, what="equal digests")
        print(f"replicas converged {time.monotonic() - t0:.1f} s after the restart")

        # Equal digests: every replica holds the same records. What they hold:
        status, _, raw = request(victim.api(), "GET", "/v1/kv?prefix=&limit=10000")
        assert status == 200
        live = {item["key"]: item["version"] for item in json.loads(raw)["keys"]}
        for key, (version, value) in acked.items():
            if key in uncertain:
                continue
            if value is None:
                assert key not in live, f"deleted key {key} came back"
            else:
                assert live.get(key) == version, f"acknowledged write of {key} missing"
        for key in rng.sample(sorted(k for k in acked if k not in deleted | uncertain), 100):
            status, _, body = request(agents[0].api(), "GET", key_path(key, consistency="all"))
            assert (status, body) == (200, acked[key][1]), key


HORIZON_S = 2.0


def test_every_agent_killed_at_once_for_longer_than_the_horizon_loses_nothing(
    tmp_path: Path,
) -> None:
    """Five agents, a short tombstone horizon, writes and deletes at quorum, kill -9
    of all five at once, a wait longer than the horizon, restart: every acknowledged
    write reads back and no acknowledged delete comes back."""
    args = ["--kv-sync-interval", "0.5", "--kv-tombstone-horizon", str(HORIZON_S)]
    with LocalCluster(5, tmp_path, extra_args=args) as cluster:
        cluster.start()
        cluster.wait_all_alive(timeout=30)
        agents = cluster.agents
        acked: dict[str, bytes | None] = {}
        for i in range(200):
            key, value = f"k{i:03d}", b"v-%d" % i
            if write(agents[i % 5], "PUT", key, value) is not None:
                acked[key] = value
        for i in range(0, 200, 10):
            key = f"k{i:03d}"
            if write(agents[i % 5], "DELETE", key) is not None:
                acked[key] = None
        assert len(acked) == 200

        for agent in agents:
            agent.signal(signal.SIGKILL)
        for agent in agents:
            agent.wait(5)
        time.sleep(2 * HORIZON_S)
        cluster.start()
        cluster.wait_all_alive(timeout=30)
        cluster.wait_until(lambda: converged(cluster, 3), CONVERGE_S, what="equal digests")

        for i, (key, value) in enumerate(sorted(acked.items())):
            status, _, body = request(agents[i % 5].api(), "GET", key_path(key, consistency="all"))
            if value is None:
                assert status == 404, f"deleted key {key} came back"
            else:
                assert (status, body) == (200, value), f"acknowledged write of {key} lost"
