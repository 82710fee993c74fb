#!/usr/bin/env python3
"""User events through N gossip agents beside N Serf agents, on loopback, in one run.

Both clusters run an event handler on every agent that appends the wall time
(date +%s.%N) to a file of its own. After every agent sees N alive and a
settling pause, --events events are fired one after another, alternating the
two clusters, each through agent 1 (gossip: POST /v1/event; serf: `serf
event`), without coalescing. For each event: the time from just before the
request to the last handler run on any agent. At the end: how many times each
agent ran its handler per event (every agent exactly once is the aim), and the
UDP payload bytes per agent that the events added (an nftables counter over the
event phase minus an idle phase of the same length; root and nft needed, else
n/a).

The gossip agents load only the event-handler plugin (GOSSIP_PLUGINS, unless
set already): Serf has no store or ownership service to carry either.

Bounded: at most 100 agents each, loopback only; every process is stopped by PID.
Example: python3 tools/bench_events.py --agents 20 --events 10
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_agents import SerfCluster, port_plan, wait

from gossip.client.localcluster import HOST, LocalCluster

HANDLER = """#!/bin/sh
# Append the wall time of this run to the agent's own file.
echo "$(date +%s.%N)" >> "{out}/${{GOSSIP_SELF_NAME:-$SERF_SELF_NAME}}"
"""
EVENT_WAIT_S = 30.0


def handler_times(out: Path, names: list[str]) -> dict[str, list[float]]:
    found = {}
    for name in names:
        path = out / name
        text = path.read_text() if path.exists() else ""
        found[name] = [float(x) for x in text.split()]
    return found


def fire_gossip(cluster: LocalCluster, name: str) -> None:
    cluster.agents[0].api().call("POST", "/v1/event", {"name": name, "coalesce": False})


def fire_serf(base: int, name: str) -> None:
    subprocess.run(
        ["serf", "event", f"-rpc-addr={HOST}:{base + 1}", "-coalesce=false", name, ""],
        check=True, capture_output=True, timeout=10,
    )  # fmt: skip


def run_one(fire: object, out: Path, names: list[str], runs_before: int) -> float | None:
    """Fire one event; seconds until every agent has run its handler once more."""
    t0 = time.time()
    fire()  # type: ignore[operator]
    deadline = time.monotonic() + EVENT_WAIT_S
    while time.monotonic() < deadline:
        times = handler_times(out, names)
        if all(len(t) > runs_before for t in times.values()):
            return max(t[runs_before] for t in times.values()) - t0
        time.sleep(0.05)
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--events", type=int, default=10)
    ap.add_argument("--profile", default="lan", choices=("lan", "wan", "local"))
    ap.add_argument("--settle", type=float, default=10.0)
    ap.add_argument("--no-serf", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("GOSSIP_PLUGINS", "gossip.runtime.handlers.service")
    n = max(1, min(args.agents, 100))
    k = max(1, min(args.events, 200))
    workdir = Path(tempfile.mkdtemp(prefix="bench-events-"))
    outs = {"gossip": workdir / "gossip-runs", "serf": workdir / "serf-runs"}
    for d in outs.values():
        d.mkdir()
    scripts = {}
    for impl, d in outs.items():
        script = workdir / f"{impl}-handler.sh"
        script.write_text(HANDLER.format(out=d))
        script.chmod(0o755)
        scripts[impl] = script
    gbase, sbase, with_serf, counter = port_plan(n, want_serf=not args.no_serf)
    cluster = LocalCluster(
        n, workdir / "gossip", base_port=gbase, profile=args.profile,
        extra_args=["--event-handler", f"user={scripts['gossip']}"],
    )  # fmt: skip
    gnames = [a.name for a in cluster.agents]
    serf = SerfCluster(n, sbase, args.profile, workdir) if with_serf else None
    snames = [f"serf-{i + 1}" for i in range(n)]
    counter.install()
    try:
        cluster.start()
        if serf:
            serf_start_with_handler(serf, scripts["serf"])
        wait(lambda: cluster.all_see(gnames, "alive", [gnames[0], gnames[-1]]),
             120, "gossip: all alive")  # fmt: skip
        if serf:
            wait(serf.alive_everywhere, 120, "serf: all alive")
        time.sleep(args.settle)
        idle0 = counter.read()
        t_idle = time.monotonic()
        latencies: dict[str, list[float | None]] = {"gossip": [], "serf": []}
        # An idle phase as long as the event phase will be, estimated as k x 1 s.
        time.sleep(max(1.0, k * 1.0))
        idle1 = counter.read()
        idle_s = time.monotonic() - t_idle
        ev0 = counter.read()
        t_ev = time.monotonic()
        for i in range(k):
            latencies["gossip"].append(
                run_one(lambda i=i: fire_gossip(cluster, f"bench{i}"), outs["gossip"], gnames, i)
            )
            if serf:
                latencies["serf"].append(
                    run_one(lambda i=i: fire_serf(sbase, f"bench{i}"), outs["serf"], snames, i)
                )
        time.sleep(3.0)  # late duplicates would land here
        ev1 = counter.read()
        ev_s = time.monotonic() - t_ev
        report(latencies, outs, gnames, snames if serf else [], k, n)
        for impl in counter.ranges:
            if impl in ev1 and impl in idle1:
                idle_b = idle1[impl][1] - idle0[impl][1] - 28 * (idle1[impl][0] - idle0[impl][0])
                ev_b = ev1[impl][1] - ev0[impl][1] - 28 * (ev1[impl][0] - ev0[impl][0])
                added = (ev_b - idle_b * ev_s / idle_s) / n
                print(f"{impl:8} UDP payload bytes per agent added by {k} events: {added:.0f}")
            else:
                print(f"{impl:8} UDP bytes: n/a (needs root and nft)")
    finally:
        cluster.stop(grace=10)
        if serf:
            serf.stop()
        counter.remove()
    print(f"logs: {workdir}")
    return 0


def serf_start_with_handler(serf: SerfCluster, script: Path) -> None:
    for i in range(serf.n):
        port, rpc = serf.base + 2 * i, serf.base + 2 * i + 1
        args = ["serf", "agent", f"-node=serf-{i + 1}", f"-bind={HOST}:{port}",
                f"-rpc-addr={HOST}:{rpc}", f"-profile={serf.profile}", "-log-level=warn",
                f"-event-handler=user={script}"]  # fmt: skip
        if i:
            args += [f"-retry-join={HOST}:{serf.base}", "-retry-interval=1s"]
        log = (serf.workdir / f"serf-{i + 1}.log").open("wb")
        serf.procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT))


def report(
    latencies: dict[str, list[float | None]],
    outs: dict[str, Path],
    gnames: list[str],
    snames: list[str],
    k: int,
    n: int,
) -> None:
    print(f"\n{n} agents each, {k} events each, loopback; time from event to last handler run:")
    print(f"{'':8}{'median s':>10}{'max s':>8}{'lost':>6}{'runs':>7}{'exact':>7}")
    medians = {}
    for impl, names in (("gossip", gnames), ("serf", snames)):
        if not names:
            continue
        got = [x for x in latencies[impl] if x is not None]
        runs = handler_times(outs[impl], names)
        total = sum(len(t) for t in runs.values())
        exact = sum(len(t) == k for t in runs.values())
        med = statistics.median(got) if got else None
        medians[impl] = med
        print(
            f"{impl:8}{med if med is not None else float('nan'):10.3f}"
            f"{max(got) if got else float('nan'):8.3f}{k - len(got):6d}{total:7d}{exact:7d}"
        )
    if medians.get("gossip") and medians.get("serf"):
        print(f"median ratio gossip / serf: {medians['gossip'] / medians['serf']:.2f}")
    print(f"(runs: handler runs in all, {k * n} expected; exact: agents with exactly {k})")


if __name__ == "__main__":
    sys.exit(main())
