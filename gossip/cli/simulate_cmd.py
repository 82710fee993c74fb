"""`gossip simulate`: run the membership core in the seeded cluster simulator.

Rules: the same arguments and seed print the same figures (only wall_s and
cpu_s, the process CPU time, differ); --json prints one JSON object, otherwise
a readable summary. Bad arguments exit 2 with a one-line reason.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from gossip.sim.scenario import Scenario, run_scenario


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="simulate a cluster under faults and print detection and load figures",
        description="Simulate N nodes (real wire bytes, simulated time) under loss, latency, "
        "crashes, pauses and a partition, then report convergence, failure detection, false "
        "verdicts and load.",
    )
    p.add_argument("--nodes", type=int, default=10, help="cluster size (default 10)")
    p.add_argument("--loss", type=float, default=0.0, help="datagram loss probability 0..1")
    p.add_argument("--latency-ms", type=float, default=1.0, help="one-way latency (default 1)")
    p.add_argument("--jitter-ms", type=float, default=0.5, help="extra random latency")
    p.add_argument("--duplicate", type=float, default=0.0, help="duplication probability")
    p.add_argument("--reorder", type=float, default=0.0, help="reordering probability")
    p.add_argument("--crash", type=int, default=0, help="nodes to kill after convergence")
    p.add_argument("--pause", type=int, default=0, help="nodes to stall after convergence")
    p.add_argument("--pause-s", type=float, default=4.0, help="stall length (default 4)")
    p.add_argument("--partition-s", type=float, default=0.0, help="split in two halves this long")
    p.add_argument("--duration", type=float, default=60.0, help="simulated seconds (default 60)")
    p.add_argument(
        "--events-per-s", type=float, default=0.0, help="user events per second cluster-wide"
    )
    p.add_argument(
        "--queries-per-s", type=float, default=0.0, help="queries to all per second cluster-wide"
    )
    p.add_argument(
        "--query-relay", type=int, default=0, metavar="N", help="relay each reply via N members"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--profile", choices=("lan", "wan", "local"), default="lan")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=simulate)


def simulate(args: argparse.Namespace) -> int:
    sc = Scenario(
        nodes=args.nodes,
        duration=args.duration,
        seed=args.seed,
        profile=args.profile,
        loss=args.loss,
        latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms,
        duplicate=args.duplicate,
        reorder=args.reorder,
        crash=args.crash,
        pause=args.pause,
        pause_s=args.pause_s,
        partition_s=args.partition_s,
        events_per_s=args.events_per_s,
        queries_per_s=args.queries_per_s,
        query_relay=args.query_relay,
    )
    try:
        result = run_scenario(sc)
    except ValueError as exc:
        print(f"gossip simulate: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print(format_summary(result))
    return 0


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} s"


def format_summary(r: dict[str, Any]) -> str:
    lines = [
        f"{r['nodes']} nodes, {r['duration_s']:g} simulated s, seed {r['seed']} "
        f"({r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU, {r['events']} events)",
        f"converged (all see all alive): {_s(r['converged_s'])}",
    ]
    if r["fault_at_s"] is not None and (r["crashed"] or r["paused"] or r["healed_s"]):
        lines.append(f"faults struck at {_s(r['fault_at_s'])}")
    if r["crashed"]:
        lines.append(
            f"crashed {r['crashed']}, detected by all: {r['detected']}; worst detection: "
            f"first {_s(r['detect_first_s'])}, everyone {_s(r['detect_all_s'])}"
        )
    if r["paused"]:
        lines.append(f"paused {r['paused']}")
    if r["scenario"]["partition_s"]:
        lines.append(f"partition healed (all see all alive) after {_s(r['healed_s'])}")
    lines += [
        f"false suspicions: {r['false_suspicions']} (of {r['falsely_suspected_nodes']} nodes), "
        f"false deaths: {r['false_deaths']}",
        f"load per node: {r['msgs_per_node_s']:.2f} datagrams/s, "
        f"{r['bytes_per_node_s']:.0f} B/s UDP, {r['stream_bytes_per_node_s']:.0f} B/s streams; "
        f"largest datagram {r['max_packet_bytes']} B",
    ]
    if "events_fired" in r:
        lines.append(
            f"user events: {r['events_fired']} fired, {r['event_missing']} deliveries missing, "
            f"{r['event_duplicates']} duplicated; time to deliver p50 "
            f"{_s(r['event_latency_p50_s'])}, p99 {_s(r['event_latency_p99_s'])}, "
            f"max {_s(r['event_latency_max_s'])}"
        )
    if "queries" in r:
        lines.append(
            f"queries: {r['queries']}; worst share acked {r['query_ack_share_min']}, "
            f"answered {r['query_answer_share_min']} (mean {r['query_answer_share_mean']}); "
            f"last answer p50 {_s(r['query_last_answer_p50_s'])}, "
            f"max {_s(r['query_last_answer_max_s'])}"
        )
    return "\n".join(lines)
