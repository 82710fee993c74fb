#!/usr/bin/env python3
"""User events and queries through N gossip agents beside N Serf agents, in one run.

For each --loss and each --agents N, a network namespace of this tool's own
(evb-<pid>-<i>: only its loopback, up) holds both clusters; with a loss, an
nftables rule on its input hook drops that share of UDP datagrams at random
(on input, as on a receiver: a drop on output would fail sendto(), which is
not loss). TCP (the control APIs, push-pull) is not dropped. Each (N, loss)
runs as a child of this tool inside the namespace; the namespace is deleted
when the child ends, whatever happens, and the child stops every agent it
started by PID.

In a child: every agent of both clusters runs one handler for user events
that appends "<wall time> <event name>" to a file of its own, and one for
queries that prints the agent's name (the answer). After every agent sees N
alive and --settle seconds, --events events are fired through agent 1,
alternating the clusters (gossip: POST /v1/event; serf: `serf event`), without
coalescing; then --queries queries (gossip: POST /v1/query, read as it
streams; serf: `serf query`, its text output read as it streams), each with the
same --query-timeout. Figures: the time from just before the request to the
last agent's handler run (events) and to the last distinct answer (queries);
how often each agent's handler ran for each event (exactly once is the aim);
answers and acks per query against N; and the UDP payload bytes per agent the
events added (an nftables counter over the event phase minus an idle phase of
the same length). Without root, only --loss 0 runs, on the host's loopback.

The gossip agents load only the event-handler plugin (GOSSIP_PLUGINS, unless
set already): Serf has no store or ownership service to carry either.

Bounded: at most 100 agents each, 200 events, 50 queries; every process is
stopped by PID; traffic stays on the namespace's loopback.
Example: python3 tools/bench_events.py --agents 20 50 --loss 0 10 --events 10 --queries 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_agents import SerfCluster, port_plan, wait

from gossip.bench.serf_events import (
    QueryRun,
    Side,
    delivery,
    last_first_run,
    median_ratios,
    parse_handler_runs,
    parse_serf_reply,
    query_run,
    render_table,
)
from gossip.client.localcluster import HOST, LocalCluster

EVENT_HANDLER = """#!/bin/sh
# Append the wall time of this run and the event's name to the agent's own file.
event="${{GOSSIP_USER_EVENT:-$SERF_USER_EVENT}}"
echo "$(date +%s.%N) $event" >> "{out}/${{GOSSIP_SELF_NAME:-$SERF_SELF_NAME}}"
"""
QUERY_HANDLER = """#!/bin/sh
# The answer: this agent's name.
echo "${GOSSIP_SELF_NAME:-$SERF_SELF_NAME}"
"""
EVENT_WAIT_S = 30.0
LOSS_TABLE = "evb_loss"


# --- one (N, loss) run, inside the namespace -------------------------------------------


def handler_runs(out: Path, names: list[str]) -> dict[str, list[tuple[float, str]]]:
    found = {}
    for name in names:
        path = out / name
        found[name] = parse_handler_runs(path.read_text() if path.exists() else "")
    return found


def fire_gossip(cluster: LocalCluster, name: str) -> None:
    cluster.agents[0].api().call("POST", "/v1/event", {"name": name, "coalesce": False})


def fire_serf(base: int, name: str) -> None:
    subprocess.run(
        ["serf", "event", f"-rpc-addr={HOST}:{base + 1}", "-coalesce=false", name, ""],
        check=True, capture_output=True, timeout=10,
    )  # fmt: skip


def time_event(
    fire: Callable[[str], None], event: str, out: Path, names: list[str]
) -> float | None:
    """Fire one event; seconds until every agent has run its handler for it."""
    t0 = time.time()
    fire(event)
    deadline = time.monotonic() + EVENT_WAIT_S
    while time.monotonic() < deadline:
        last = last_first_run(handler_runs(out, names), event)
        if last is not None:
            return last - t0
        time.sleep(0.05)
    return None


def query_gossip(cluster: LocalCluster, name: str, timeout_s: float, n: int) -> QueryRun:
    body = {"name": name, "payload": "", "ack": True, "timeout": timeout_s}
    replies = []
    t0 = time.time()
    for line in cluster.agents[0].api().stream_lines("/v1/query", "POST", body):
        kind = line.get("event")
        if kind in ("ack", "response") and isinstance(line.get("from"), str):
            replies.append((time.time(), str(kind), line["from"]))
    return query_run(t0, replies, n)


def query_serf(base: int, name: str, timeout_s: float, n: int) -> QueryRun:
    argv = ["serf", "query", f"-rpc-addr={HOST}:{base + 1}", f"-timeout={timeout_s}s", name, ""]
    replies = []
    t0 = time.time()
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                reply = parse_serf_reply(line)
                if reply:
                    replies.append((time.time(), *reply))
            proc.wait(timeout_s + 10)
        finally:
            if proc.poll() is None:
                proc.kill()
    return query_run(t0, replies, n)


def serf_start_with_handlers(serf: SerfCluster, event_script: Path, query_script: Path) -> None:
    for i in range(serf.n):
        port, rpc = serf.base + 2 * i, serf.base + 2 * i + 1
        args = ["serf", "agent", f"-node=serf-{i + 1}", f"-bind={HOST}:{port}",
                f"-rpc-addr={HOST}:{rpc}", f"-profile={serf.profile}", "-log-level=warn",
                f"-event-handler=user={event_script}",
                f"-event-handler=query={query_script}"]  # fmt: skip
        if i:
            args += [f"-retry-join={HOST}:{serf.base}", "-retry-interval=1s"]
        log = (serf.workdir / f"serf-{i + 1}.log").open("wb")
        serf.procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT))


def udp_payload(reading: dict[str, tuple[int, int]], impl: str) -> int:
    packets, bytes_ = reading[impl]
    return bytes_ - 28 * packets  # IPv4 + UDP headers


def one_run(args: argparse.Namespace, n: int, loss: float, workdir: Path) -> list[Side]:
    os.environ.setdefault("GOSSIP_PLUGINS", "gossip.runtime.handlers.service")
    k, q = args.events, args.queries
    outs = {"gossip": workdir / "gossip-runs", "serf": workdir / "serf-runs"}
    for d in outs.values():
        d.mkdir()
    scripts = {}
    for impl, d in outs.items():
        scripts[impl] = workdir / f"{impl}-event.sh"
        scripts[impl].write_text(EVENT_HANDLER.format(out=d))
        scripts[impl].chmod(0o755)
    answer = workdir / "query.sh"
    answer.write_text(QUERY_HANDLER)
    answer.chmod(0o755)
    gbase, sbase, with_serf, counter = port_plan(n, want_serf=not args.no_serf)
    cluster = LocalCluster(
        n, workdir / "gossip", base_port=gbase, profile=args.profile,
        extra_args=["--event-handler", f"user={scripts['gossip']}",
                    "--event-handler", f"query={answer}"],
    )  # fmt: skip
    names = {
        "gossip": [a.name for a in cluster.agents],
        "serf": [f"serf-{i + 1}" for i in range(n)],
    }
    serf = SerfCluster(n, sbase, args.profile, workdir) if with_serf else None
    impls = ["gossip", "serf"] if serf else ["gossip"]
    sides = {impl: Side(impl, n, loss) for impl in impls}
    fire = {
        "gossip": lambda e: fire_gossip(cluster, e),
        "serf": lambda e: fire_serf(sbase, e),
    }
    ask = {
        "gossip": lambda name: query_gossip(cluster, name, args.query_timeout, n),
        "serf": lambda name: query_serf(sbase, name, args.query_timeout, n),
    }
    counter.install()
    try:
        cluster.start()
        if serf:
            serf_start_with_handlers(serf, scripts["serf"], answer)
        gnames = names["gossip"]
        wait(lambda: cluster.all_see(gnames, "alive", [gnames[0], gnames[-1]]),
             180, "gossip: all alive")  # fmt: skip
        if serf:
            wait(serf.alive_everywhere, 180, "serf: all alive")
        time.sleep(args.settle)
        # An idle phase about as long as the event phase, to subtract the background.
        idle0, t_idle = counter.read(), time.monotonic()
        time.sleep(max(1.0, k * 1.0))
        idle1, idle_s = counter.read(), time.monotonic() - t_idle
        ev0, t_ev = counter.read(), time.monotonic()
        events = [f"bench{i}" for i in range(k)]
        for event in events:
            for impl in impls:
                sides[impl].event_latencies.append(
                    time_event(fire[impl], event, outs[impl], names[impl])
                )
        time.sleep(3.0)  # late duplicates would land here
        ev1, ev_s = counter.read(), time.monotonic() - t_ev
        for impl in impls:
            sides[impl].delivery = delivery(handler_runs(outs[impl], names[impl]), events)
            if impl in ev1 and impl in idle1:
                idle_b = udp_payload(idle1, impl) - udp_payload(idle0, impl)
                ev_b = udp_payload(ev1, impl) - udp_payload(ev0, impl)
                sides[impl].event_bytes_per_agent = (ev_b - idle_b * ev_s / idle_s) / n
        for i in range(q):
            for impl in impls:
                sides[impl].queries.append(ask[impl](f"benchq{i}"))
    finally:
        cluster.stop(grace=10)
        if serf:
            serf.stop()
        counter.remove()
    return [sides[impl] for impl in impls]


# --- the namespaces and the table, outside -------------------------------------------


def loss_ruleset(loss: float) -> str:
    """nft script for the namespace: drop `loss` % of arriving UDP datagrams."""
    rule = f"meta l4proto udp numgen random mod 10000 < {round(loss * 100)} drop"
    return (
        f"table inet {LOSS_TABLE} {{\n  chain input {{\n"
        f"    type filter hook input priority 0; policy accept;\n    {rule}\n  }}\n}}\n"
    )


def run_child(argv: list[str], prefix: list[str], timeout_s: float) -> int:
    proc = subprocess.Popen([*prefix, *argv])
    try:
        return proc.wait(timeout_s)
    finally:
        if proc.poll() is None:  # interrupted or over time: stop it (it stops its agents)
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def run_in_namespace(argv: list[str], ns: str, loss: float, timeout_s: float) -> int:
    def ip(*a: str, stdin: str | None = None) -> None:
        subprocess.run(["ip", *a], input=stdin, text=True, check=True, timeout=30,
                       capture_output=True)  # fmt: skip

    created = False
    try:
        ip("netns", "add", ns)
        created = True
        ip("-n", ns, "link", "set", "lo", "up")
        if loss > 0:
            ip("netns", "exec", ns, "nft", "-f", "-", stdin=loss_ruleset(loss))
        return run_child(argv, ["ip", "netns", "exec", ns], timeout_s)
    finally:
        if created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def child_argv(args: argparse.Namespace, n: int, loss: float, result: Path) -> list[str]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--agents", str(n), "--loss", str(loss),
            "--events", str(args.events), "--queries", str(args.queries),
            "--query-timeout", str(args.query_timeout), "--settle", str(args.settle),
            "--profile", args.profile, "--child-result", str(result)]  # fmt: skip
    return argv + (["--no-serf"] if args.no_serf else [])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agents", type=int, nargs="+", default=[20])
    ap.add_argument("--loss", type=float, nargs="+", default=[0.0], help="UDP loss, percent")
    ap.add_argument("--events", type=int, default=10)
    ap.add_argument("--queries", type=int, default=5)
    ap.add_argument("--query-timeout", type=float, default=5.0, help="seconds, both tools")
    ap.add_argument("--profile", default="lan", choices=("lan", "wan", "local"))
    ap.add_argument("--settle", type=float, default=10.0)
    ap.add_argument("--no-serf", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--child-result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.events = max(1, min(args.events, 200))
    args.queries = max(0, min(args.queries, 50))
    args.query_timeout = max(0.5, min(args.query_timeout, 60.0))
    sizes = [max(1, min(n, 100)) for n in args.agents]
    losses = [max(0.0, min(loss, 100.0)) for loss in args.loss]
    if args.child_result:
        workdir = Path(tempfile.mkdtemp(prefix="bench-events-"))
        mine = one_run(args, sizes[0], losses[0], workdir)
        args.child_result.write_text(json.dumps([s.to_json() for s in mine]))
        print(f"logs: {workdir}", file=sys.stderr)
        return 0
    isolated = os.geteuid() == 0 and shutil.which("ip") is not None and shutil.which("nft")
    if not isolated and any(losses):
        raise SystemExit("--loss above 0 needs root, ip and nft (a network namespace)")
    results = Path(tempfile.mkdtemp(prefix="bench-events-results-"))
    per_run_s = 600 + args.events * 70 + args.queries * 2 * (args.query_timeout + 15)
    sides: list[Side] = []
    for loss in losses:
        for n in sizes:
            result = results / f"n{n}-loss{loss:g}.json"
            argv = child_argv(args, n, loss, result)
            ns = f"evb-{os.getpid()}-{len(sides)}"
            code = (
                run_in_namespace(argv, ns, loss, per_run_s)
                if isolated
                else run_child(argv, [], per_run_s)
            )
            if code != 0 or not result.exists():
                print(f"N={n} loss {loss:g}%: the run failed (exit {code})", file=sys.stderr)
                continue
            sides += [Side.from_json(s) for s in json.loads(result.read_text())]
    if args.json:
        print(json.dumps([s.to_json() for s in sides], indent=1))
        return 0
    print(
        f"\nEvents ({args.events} each) and queries ({args.queries} each, timeout "
        f"{args.query_timeout:g} s), profile {args.profile}, one namespace per size and loss:"
    )
    print(render_table(sides))
    for line in median_ratios(sides):
        print(line)
    print("ev: event to the last handler run; once/exp: (agent, event) pairs run exactly once;")
    print("q: query to the last answer; ev B/agent: UDP payload bytes per agent the events added")
    return 0


if __name__ == "__main__":
    sys.exit(main())
