"""Puts and gets per second through real agent processes on loopback.

Rules: agents are started as `gossip agent` subprocesses (gossip.runtime.
localcluster) with sqlite under a temporary --data-dir, so every acknowledged
put is committed (WAL, synchronous=NORMAL). Clients send HTTP requests to the
first agent's control API from `concurrency` threads; that agent coordinates
each request with the key's replicas. Two set-ups run in the same call, so
the figures compare: one agent at consistency one, and three agents with
R = 3 at quorum (each request waits for two of the three replicas).
Each client thread keeps one connection to the agent (HTTP keep-alive).
Beside the rates, the latency of one operation as a client sees it (p50, p99),
and the agents' CPU time per operation (user + system, read from /proc on
Linux): it varies far less than the rates when other work shares the machine,
so it is the figure to compare builds by.
"""

from __future__ import annotations

import os
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
    put_cpu_ms: float | None = None
    """Agent CPU per put, ms (None where /proc is not readable)."""
    get_cpu_ms: float | None = None
    put_ms: tuple[float, float] = (0.0, 0.0)
    """Put latency (p50, p99), ms."""
    get_ms: tuple[float, float] = (0.0, 0.0)


@dataclass
class _Phase:
    per_s: float
    cpu_ms: float | None
    latency_ms: tuple[float, float]


def _cpu_s(pids: list[int]) -> float | None:
    """User + system CPU seconds of the processes (None without /proc)."""
    total = 0
    try:
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None
    return total / os.sysconf("SC_CLK_TCK")


def _percentile(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


def _run(work: Callable[[int], None], ops: int, concurrency: int, pids: list[int]) -> _Phase:
    def timed(j: int) -> float:
        start = time.perf_counter()
        work(j)
        return 1000 * (time.perf_counter() - start)

    cpu0 = _cpu_s(pids)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        took = sorted(pool.map(timed, range(ops)))
    rate = ops / (time.perf_counter() - t0)
    cpu1 = _cpu_s(pids)
    cpu_ms = None if cpu0 is None or cpu1 is None else 1000 * (cpu1 - cpu0) / ops
    return _Phase(rate, cpu_ms, (_percentile(took, 0.5), _percentile(took, 0.99)))


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

            pids = [a.proc.pid for a in cluster.agents if a.proc is not None]
            puts = _run(put, ops, concurrency, pids)
            gets = _run(get, ops, concurrency, pids)
            return OpsResult(
                label,
                puts.per_s,
                gets.per_s,
                puts.cpu_ms,
                gets.cpu_ms,
                puts.latency_ms,
                gets.latency_ms,
            )


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
    for r in results:
        print(
            f"{r.label:>22}: put p50 {r.put_ms[0]:6.2f} ms  p99 {r.put_ms[1]:6.2f} ms"
            f"  get p50 {r.get_ms[0]:6.2f} ms  p99 {r.get_ms[1]:6.2f} ms"
        )
    for r in results:
        if r.put_cpu_ms is not None and r.get_cpu_ms is not None:
            print(
                f"{r.label:>22}: {r.put_cpu_ms:8.2f} ms agent CPU per put"
                f"  {r.get_cpu_ms:5.2f} ms per get"
            )
    one, quorum = results
    print(
        f"{'quorum / one':>22}: puts {quorum.puts_per_s / one.puts_per_s:.2f}"
        f"  gets {quorum.gets_per_s / one.gets_per_s:.2f}"
    )
    return results
