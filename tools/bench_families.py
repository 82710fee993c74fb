#!/usr/bin/env python3
"""Join, crash-detection and leave times of real agents on IPv4 and on IPv6 loopback, in one run.

For each family (127.0.0.1, then ::1) and each of --runs rounds: --agents agent
processes (LocalCluster, local profile with QUICK_CONFIG, the e2e tests' intervals)
start and join through the first; measured are the seconds until every agent
sees all alive, from SIGKILL of the last agent until every survivor sees it dead,
and from SIGTERM of the next one until the rest see it left. Printed: the median
and the worst of each per family. Bounded: at most 20 agents and 10 runs; every
process is started here and stopped by PID.
Example: python3 tools/bench_families.py --agents 5 --runs 3
"""

from __future__ import annotations

import argparse
import signal
import statistics
import tempfile
import time
from pathlib import Path

from gossip.client.localcluster import QUICK_CONFIG, LocalCluster

LIMIT_S = 60.0


def one_round(host: str, agents: int, workdir: Path) -> tuple[float, float, float]:
    with LocalCluster(agents, workdir, config_text=QUICK_CONFIG, host=host) as cluster:
        start = time.monotonic()
        cluster.start()
        cluster.wait_all_alive(LIMIT_S)
        joined = time.monotonic() - start
        names = [a.name for a in cluster.agents]
        victim, leaver = cluster.agents[-1], cluster.agents[-2]
        survivors = names[:-1]
        start = time.monotonic()
        victim.signal(signal.SIGKILL)
        cluster.wait_until(
            lambda: cluster.all_see([victim.name], "dead", survivors), LIMIT_S, poll=0.05
        )
        detected = time.monotonic() - start
        start = time.monotonic()
        leaver.signal(signal.SIGTERM)
        rest = names[:-2]
        cluster.wait_until(lambda: cluster.all_see([leaver.name], "left", rest), LIMIT_S, poll=0.05)
        left = time.monotonic() - start
    return joined, detected, left


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=5, choices=range(3, 21), metavar="N")
    parser.add_argument("--runs", type=int, default=3, choices=range(1, 11), metavar="N")
    args = parser.parse_args()
    print(f"{args.agents} agents, {args.runs} runs per family; seconds, median / worst")
    print(f"{'host':<12}{'all alive':>16}{'crash seen dead':>18}{'leave seen':>16}")
    for host in ("127.0.0.1", "::1"):
        rounds = []
        for i in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="gossip-families-") as tmp:
                rounds.append(one_round(host, args.agents, Path(tmp) / f"run{i}"))
        cells = [
            f"{statistics.median(col):.2f} / {max(col):.2f}" for col in zip(*rounds, strict=True)
        ]
        print(f"{host:<12}{cells[0]:>16}{cells[1]:>18}{cells[2]:>16}")


if __name__ == "__main__":
    main()
