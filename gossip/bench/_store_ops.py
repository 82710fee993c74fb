"""Puts and gets per second through real agent processes on loopback.

Rules: agents are started as `gossip agent` subprocesses (gossip.runtime.
localcluster) with sqlite under a temporary --data-dir, so every acknowledged
put is committed (WAL, synchronous=NORMAL). Clients send HTTP requests to the
first agent's control API from `concurrency` threads; that agent coordinates
each request with the key's replicas. Two set-ups run in the same call, so
the figures compare: one agent at consistency one, and three agents with
R = 3 at quorum (each request waits for two of the three replicas).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from gossip.client.api import ApiClient
from gossip.client.kv import key_path, request
from gossip.client.localcluster import LocalCluster

VALUE = b"x" * 100


@dataclass
class OpsResult:
    label: str
    puts_per_s: float
    gets_per_s: float


def _rate(work: Callable[[int], None], ops: int, concurrency: int) -> float:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(work, range(ops)))
    return ops / (time.perf_counter() - t0)


def _measure(label: str, agents: int, consistency: str, ops: int, concurrency: int) -> OpsResult:
    with tempfile.TemporaryDirectory(prefix="gossip-bench-") as tmp:
        args = ["--kv-replicas", str(min(3, agents)), "--log-level", "warning"]
        with LocalCluster(agents, Path(tmp), extra_args=args) as cluster:
            cluster.start()
            cluster.wait_all_alive(timeout=30)
            time.sleep(1.0)  # let every agent's store see the full view
            api: ApiClient = cluster.agents[0].api()

            def put(j: int) -> None:
                path = key_path(f"bench-{j}", consistency=consistency)
                status, _, body = request(api, "PUT", path, VALUE)
                if status != 200:
                    raise RuntimeError(f"put failed: HTTP {status} {body[:200]!r}")

            def get(j: int) -> None:
                path = key_path(f"bench-{j}", consistency=consistency)
                status, _, body = request(api, "GET", path)
                if (status, body) != (200, VALUE):
                    raise RuntimeError(f"get failed: HTTP {status} {body[:200]!r}")

            return OpsResult(label, _rate(put, ops, concurrency), _rate(get, ops, concurrency))


def bench_ops(ops: int, concurrency: int) -> list[OpsResult]:
    results = [
        _measure("1 agent, one", 1, "one", ops, concurrency),
        _measure("3 agents R=3, quorum", 3, "quorum", ops, concurrency),
    ]
    for r in results:
        print(
            f"{r.label:>22}: {r.puts_per_s:8,.0f} puts/s  {r.gets_per_s:8,.0f} gets/s"
            f"  ({ops:,} each, {concurrency} clients, HTTP on loopback)"
        )
    one, quorum = results
    print(
        f"{'quorum / one':>22}: puts {quorum.puts_per_s / one.puts_per_s:.2f}"
        f"  gets {quorum.gets_per_s / one.gets_per_s:.2f}"
    )
    return results
