"""`gossip emulate run|plan|cleanup`: play a scenario file against real agents
in network namespaces on this machine (root only), show a scenario's plan, or
remove what a killed run left behind.

Rules: a bad scenario is reported with its place and reason before anything
is created (exit 2); `run` needs root and exits 1 on a failed run, after its
cleanup. With `--report` a finished run also writes report.html and prints the
summary.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from gossip.emulate.netns import NetnsError, remove_leftovers
from gossip.emulate.plan import plan
from gossip.emulate.scenario import ScenarioError, load_scenario


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("emulate", help="network emulation in namespaces")
    sub = parser.add_subparsers(dest="emulate_command", metavar="ACTION", required=True)
    run = sub.add_parser("run", help="play a scenario against real agents (root)")
    run.add_argument("scenario", type=Path)
    run.add_argument("--out", type=Path, required=True, help="folder for every log")
    run.add_argument(
        "--agent-command",
        default=f"{shlex.quote(sys.executable)} -m gossip",
        help="how to start gossip (e.g. dist/gossip); default: this Python",
    )
    run.add_argument("--report", action="store_true", help="then write report.html and summarise")
    run.add_argument(
        "--ipv6", action="store_true", help="give the namespaces IPv6 addresses (fd00:213::/64)"
    )
    run.set_defaults(func=run_run)
    show = sub.add_parser("plan", help="check a scenario and print its plan")
    show.add_argument("scenario", type=Path)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=run_plan)
    cleanup = sub.add_parser("cleanup", help="remove namespaces of runs that died")
    cleanup.set_defaults(func=run_cleanup)


def _scenario(path: Path) -> Any:
    try:
        scenario = load_scenario(path)
        return scenario, plan(scenario)
    except (ScenarioError, OSError) as exc:
        print(f"gossip emulate: {exc}", file=sys.stderr)
        return None


def run_plan(args: argparse.Namespace) -> int:
    loaded = _scenario(args.scenario)
    if loaded is None:
        return 2
    scenario, planned = loaded
    rows = [{"at": p.at, "event": p.event, **p.log_fields()} for p in planned]
    if args.json:
        print(
            json.dumps({"name": scenario.name, "agents": scenario.agents, "steps": rows}, indent=2)
        )
        return 0
    about = f"{scenario.agents} agents, {scenario.profile} profile, {scenario.duration:g} s"
    print(f"{scenario.name}: {about}")
    for row in rows:
        extra = {k: v for k, v in row.items() if k not in ("at", "event", "action", "target")}
        head = f"{row['at']:8.2f}s  {row['event']:<15} {row['action']:<9}"
        print(f"{head} {row['target']}  {extra or ''}")
    return 0


def run_run(args: argparse.Namespace) -> int:
    loaded = _scenario(args.scenario)
    if loaded is None:
        return 2
    if os.geteuid() != 0:
        print("gossip emulate run: needs root (network namespaces, nftables)", file=sys.stderr)
        return 2
    from gossip.emulate.namespace_run import run_emulation

    try:
        run_emulation(loaded[0], args.out, command=shlex.split(args.agent_command), ipv6=args.ipv6)
    except KeyboardInterrupt:
        print("gossip emulate: interrupted; cleaned up", file=sys.stderr)
        return 130
    except (NetnsError, RuntimeError, OSError) as exc:
        print(f"gossip emulate: {exc}", file=sys.stderr)
        return 1
    if args.report:
        from gossip.cli.logs_cmd import main_report

        return main_report([str(args.out)], args.out / "report.html")
    return 0


def run_cleanup(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print("gossip emulate cleanup: needs root", file=sys.stderr)
        return 2
    removed = remove_leftovers()
    print(f"removed {len(removed)} namespaces" + (f": {', '.join(removed)}" if removed else ""))
    return 0
