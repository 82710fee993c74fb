"""`gossip torture`: whole-agent fault runs from seeds, checked and shrunk.

Rules: each seed runs N real agents in virtual time under a fault schedule drawn
from the seed (gossip.testing.torture); the same seed and options give the same
history. `--schedule FILE` replays a schedule file exactly (its seed and config
win over the options). A failing seed is printed with the checkers it broke, and
its schedule, shrunk to the faults that still make it fail, is written to
--out/torture-<seed>.json. A progress line goes to stderr on a terminal; --json
prints one JSON object with the figures and verdicts. Exit status: 0 when every
run passed, 1 when one failed, 2 for bad arguments or an unreadable file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gossip.testing.torture.config import FAULT_KINDS, TortureConfig
from gossip.testing.torture.run import Result, run_torture
from gossip.testing.torture.schedule import Schedule, generate, load
from gossip.testing.torture.shrink import shrink

MAX_SEEDS = 100_000


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "torture",
        help="run real agents in virtual time under seeded faults and check the history",
        description="Run N complete agents (membership, ownership, store) on an in-memory "
        "network in virtual time, under a fault schedule drawn from a seed, with clients "
        "reading and writing; then check for lost writes, resurrections, stale reads, "
        "divergence, ownership and membership errors. A failure prints its seed and writes "
        "a shrunk schedule that --schedule replays.",
    )
    p.add_argument("--seed", type=int, default=1, help="the run's seed (default 1)")
    p.add_argument("--seeds", metavar="A..B", help="run every seed from A to B (inclusive)")
    p.add_argument("--nodes", type=int, default=5, help="agents (default 5)")
    p.add_argument("--duration", type=float, default=120.0, help="virtual seconds of load")
    p.add_argument(
        "--faults",
        default=",".join(FAULT_KINDS),
        help=f"fault kinds, comma-separated, or 'none' (default all: {','.join(FAULT_KINDS)})",
    )
    p.add_argument("--fault-every", type=float, default=15.0, help="mean s between faults")
    p.add_argument("--replicas", type=int, default=3, help="copies of each key (3)")
    p.add_argument("--horizon", type=float, default=30.0, help="tombstone horizon, s (30)")
    p.add_argument("--reap", type=float, default=20.0, help="membership reap time, s (20)")
    p.add_argument("--rate", type=float, default=50.0, help="client ops per virtual second")
    p.add_argument("--clients", type=int, default=4, help="concurrent clients (default 4)")
    p.add_argument(
        "--roots-by-datagram",
        choices=("on", "off"),
        help="the store's roots checks by datagram (default: the agent's default)",
    )
    p.add_argument("--schedule", type=Path, metavar="FILE", help="replay this schedule file")
    p.add_argument("--out", type=Path, default=Path("."), help="where failing schedules go")
    p.add_argument("--shrink-runs", type=int, default=30, help="replays spent shrinking (0: off)")
    p.add_argument("--history", type=Path, metavar="FILE", help="write the history (JSON lines)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=torture)


def _seeds(args: argparse.Namespace) -> list[int]:
    if args.seeds is None:
        return [args.seed]
    lo, sep, hi = str(args.seeds).partition("..")
    if not sep or not lo.isdigit() or not hi.isdigit() or int(hi) < int(lo):
        raise ValueError("--seeds must look like A..B with A <= B")
    if int(hi) - int(lo) >= MAX_SEEDS:
        raise ValueError(f"--seeds: at most {MAX_SEEDS} seeds")
    return list(range(int(lo), int(hi) + 1))


def _config(args: argparse.Namespace) -> TortureConfig:
    faults = () if args.faults in ("", "none") else tuple(args.faults.split(","))
    datagram = TortureConfig.roots_by_datagram
    if args.roots_by_datagram is not None:
        datagram = args.roots_by_datagram == "on"
    return TortureConfig(
        roots_by_datagram=datagram,
        nodes=args.nodes,
        duration=args.duration,
        faults=faults,
        fault_every=args.fault_every,
        rate=args.rate,
        clients=args.clients,
        replicas=min(args.replicas, max(1, args.nodes)),
        horizon=args.horizon,
        reap=args.reap,
        gc_interval=min(5.0, args.horizon / 2),
    )


def torture(args: argparse.Namespace) -> int:
    try:
        if args.schedule is not None:
            schedules = [load(args.schedule)]
        else:
            config = _config(args)
            schedules = [generate(seed, config) for seed in _seeds(args)]
    except (ValueError, OSError) as exc:
        print(f"gossip torture: {exc}", file=sys.stderr)
        return 2
    tty = sys.stderr.isatty() and not args.json
    results: list[dict[str, Any]] = []
    failed: list[int] = []
    for schedule in schedules:
        result = run_torture(schedule.seed, schedule=schedule, progress=_progress(schedule, tty))
        if tty:
            print("\r\033[K", end="", file=sys.stderr)
        if args.history is not None:
            args.history.write_text("\n".join(result.history) + "\n")
        entry = result.to_json()
        if not result.ok:
            failed.append(result.seed)
            entry["schedule_file"] = str(_keep(result, args, tty))
        results.append(entry)
        if not args.json:
            _print(result, entry)
    if args.json:
        if len(results) == 1:
            print(json.dumps(results[0], indent=1))
        else:
            print(json.dumps({"runs": results, "failed_seeds": failed}, indent=1))
    elif len(results) > 1:
        print(f"{len(results)} seeds, {len(failed)} failed" + (f": {failed}" if failed else ""))
    return 1 if failed else 0


def _progress(schedule: Schedule, tty: bool) -> Any:
    if not tty:
        return None

    def show(t: float, planned: float, ops: int) -> None:
        phase = f"{t:6.0f}/{planned:.0f} virtual s" if t <= planned else "healing, checking"
        print(
            f"\r\033[Kseed {schedule.seed}: {phase}, {ops} ops",
            end="",
            file=sys.stderr,
            flush=True,
        )

    return show


def _keep(result: Result, args: argparse.Namespace, tty: bool) -> Path:
    """Shrink a failing schedule (when allowed) and write it; return its path."""
    schedule = result.schedule
    if args.shrink_runs > 0 and args.schedule is None:

        def report(runs: int, steps: int) -> None:
            if tty:
                print(
                    f"\rshrinking seed {result.seed}: replay {runs}, {steps} faults",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )

        schedule, _ = shrink(schedule, result.failed, max_runs=args.shrink_runs, report=report)
        if tty:
            print("\r\033[K", end="", file=sys.stderr)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"torture-{result.seed}.json"
    schedule.save(path)
    return path


def _print(result: Result, entry: dict[str, Any]) -> None:
    f = result.figures
    state = "ok" if result.ok else "FAILED " + ",".join(result.failed)
    print(
        f"seed {result.seed}: {state}; {f['ops']} ops ({f['ok']} ok, {f['fail']} fail,"
        f" {f['unknown']} unknown), {f['faults_applied']} faults, {f['crashes']} crashes,"
        f" {f['virtual_seconds']:.0f} virtual s in {f['wall_seconds']:.1f} s"
        f" ({f['speed']}x)"
    )
    for name in result.failed:
        v = result.verdicts[name]
        print(f"  {name}: {v.total} violations, e.g. {json.dumps(v.violations[:2])}")
    if not result.ok:
        print(f"  replay: gossip torture --schedule {entry['schedule_file']}")
