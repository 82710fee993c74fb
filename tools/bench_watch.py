#!/usr/bin/env python3
"""Prefix watches under writes and a kill -9: do watchers end on the last value, how fast?

N agents on loopback (local profile), W watchers spread evenly over them, each following one
prefix through gossip.client.watch (a long poll per change). One writer makes C quorum puts
to K keys under the prefix through the agents that stay up; halfway through, one agent is
killed with -9 (its watchers stop). Printed: the write-to-watcher latency over every
(watcher, version) pair a watcher saw (p50, p99, max; versions overwritten before a watcher
polled are skipped by design), and PASS when every watcher on a surviving agent ends on the
final index (the final value of every key) within --settle seconds.

Bounded: at most 20 agents, 32 watchers per agent, 100,000 writes; loopback only; every
agent process is stopped by PID.
Example: python3 tools/bench_watch.py --agents 5 --watchers 100 --changes 1000
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

from gossip.client.api import ApiClientError
from gossip.client.kv import key_path, request
from gossip.client.localcluster import AgentProcess, LocalCluster
from gossip.client.watch import changes

PREFIX = "cfg/"


def index_now(agent: AgentProcess) -> str:
    query = urlencode({"prefix": PREFIX, "watch": "", "wait": "1", "limit": "10000"})
    status, _, raw = request(agent.api(), "GET", f"/v1/kv?{query}")
    if status != 200:
        raise ApiClientError(f"listing failed: HTTP {status}")
    return str(json.loads(raw)["index"])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=5)
    ap.add_argument("--watchers", type=int, default=100)
    ap.add_argument("--changes", type=int, default=1000)
    ap.add_argument("--keys", type=int, default=50)
    ap.add_argument("--settle", type=float, default=60.0)
    a = ap.parse_args()
    if not 2 <= a.agents <= 20 or not 1 <= a.watchers <= 32 * a.agents:
        ap.error("2..20 agents, 1..32 watchers per agent")
    if not 1 <= a.changes <= 100_000 or not 1 <= a.keys <= 1000:
        ap.error("1..100000 changes, 1..1000 keys")

    sent: dict[str, float] = {}  # version -> when its write was sent
    seen: list[dict[str, float]] = [{} for _ in range(a.watchers)]  # version -> first seen
    last: dict[int, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as tmp:
        cluster = LocalCluster(a.agents, Path(tmp), extra_args=["--kv-sync-interval", "0.5"])
        with cluster:
            cluster.start()
            cluster.wait_all_alive(timeout=60)
            agents = cluster.agents
            victim = agents[-1]

            def follow(i: int, agent: AgentProcess) -> None:
                try:
                    for change in changes(agent.api(), prefix=PREFIX, wait=5, retries=3):
                        now = time.monotonic()
                        for item in change["keys"]:
                            seen[i].setdefault(item["version"], now)
                        last[i] = change["index"]
                except ApiClientError:
                    pass  # its agent was killed

            threads = [
                threading.Thread(target=follow, args=(i, agents[i % a.agents]), daemon=True)
                for i in range(a.watchers)
            ]
            for t in threads:
                t.start()
            time.sleep(2.0)  # every watcher holds its first answer
            up = agents[:-1]
            failed = 0
            started = time.monotonic()
            for n in range(a.changes):
                if n == a.changes // 2:
                    victim.signal(signal.SIGKILL)
                    victim.wait(5)
                key = key_path(f"{PREFIX}k{n % a.keys}")
                t0 = time.monotonic()
                status, _, raw = request(up[n % len(up)].api(), "PUT", key, b"v%d" % n)
                if status == 200:
                    sent[json.loads(raw)["version"]] = t0
                else:
                    failed += 1
            wrote = time.monotonic() - started
            final = index_now(agents[0])
            survivors = [i for i in range(a.watchers) if i % a.agents != a.agents - 1]
            deadline = time.monotonic() + a.settle
            while any(last.get(i) != final for i in survivors) and time.monotonic() < deadline:
                time.sleep(0.1)
            settled = sum(last.get(i) == final for i in survivors)
            agree = index_now(agents[1]) == final
            cluster.stop()
    lat = [(t - sent[v]) * 1000 for s in seen for v, t in s.items() if v in sent]
    print(
        f"agents={a.agents} watchers={a.watchers} changes={a.changes} keys={a.keys} "
        f"kill -9 of 1 agent after {a.changes // 2} writes"
    )
    print(f"writes: {a.changes - failed} acknowledged, {failed} failed, {wrote:.1f} s")
    if lat:
        print(
            f"write->watcher latency over {len(lat)} (watcher, version) pairs: "
            f"p50 {percentile(lat, 0.5):.0f} ms  p99 {percentile(lat, 0.99):.0f} ms  "
            f"max {max(lat):.0f} ms  mean {statistics.fmean(lat):.0f} ms"
        )
    ok = settled == len(survivors) and agree
    print(
        f"{'PASS' if ok else 'FAIL'}: {settled}/{len(survivors)} surviving watchers ended on "
        f"the final value of every key (agents agree on the final index: {agree})"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
