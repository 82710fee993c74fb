#!/usr/bin/env python3
"""False accusations around a blocked event loop, stall awareness off and on, in one run.

Each round: --healthy agents plus one whose loop is blocked in chunks of --block
seconds for --stall seconds (gossip/testing/stallrun.py), on 127.0.0.1, timings of
the local profile with --probe-interval and --probe-timeout; once with the core's
stall_awareness off, once on. Printed per setting, summed over --runs rounds:
suspicions and failure verdicts of healthy members (all false), how many of those
suspicions the stalled agent raised, the same counts for the stalled agent, and
its highest health score. Bounded: at most 20 healthy agents, 10 runs, 60 s stalls.
Example: python3 tools/bench_stall.py --runs 3 --block 0.3 --stall 4
"""

from __future__ import annotations

import argparse
import dataclasses

import trio

from gossip.runtime.logconfig import configure_logging
from gossip.testing.stallrun import StallReport, run_stall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--healthy", type=int, default=3, choices=range(1, 21), metavar="N")
    parser.add_argument("--runs", type=int, default=3, choices=range(1, 11), metavar="N")
    parser.add_argument("--block", type=float, default=0.3, help="seconds per blocking chunk")
    parser.add_argument("--stall", type=float, default=4.0, help="seconds of blocking")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds watched afterwards")
    parser.add_argument("--probe-interval", type=float, default=0.2)
    parser.add_argument("--probe-timeout", type=float, default=0.1)
    args = parser.parse_args()
    if not 0 < args.stall <= 60 or not 0 < args.block <= args.stall:
        parser.error("want 0 < --block <= --stall <= 60")
    core = {
        "probe_interval": args.probe_interval,
        "probe_timeout": args.probe_timeout,
        "gossip_interval": args.probe_interval / 4,
        "leave_timeout": 1.0,
    }
    configure_logging("error", "json")  # the table only; verdicts are counted, not printed
    trio.run(_bench, args, core)


async def _bench(args: argparse.Namespace, core: dict[str, float]) -> None:
    fields = [f.name for f in dataclasses.fields(StallReport)]
    print(f"{args.runs} runs: {args.healthy} healthy + 1 stalled agent, blocks of {args.block} s "
          f"for {args.stall} s, probe {args.probe_interval}/{args.probe_timeout} s")  # fmt: skip
    print(f"{'stall_awareness':<16}" + "".join(f"{name:>30}" for name in fields))
    for aware in (False, True):
        totals = dict.fromkeys(fields, 0)
        for _ in range(args.runs):
            report = await run_stall(
                args.healthy,
                args.block,
                args.stall,
                args.settle,
                {**core, "stall_awareness": aware},
            )
            for name in fields:
                value = getattr(report, name)
                totals[name] = (
                    max(totals[name], value) if name.endswith("health") else totals[name] + value
                )
        label = "on" if aware else "off"
        print(f"{label:<16}" + "".join(f"{totals[name]:>30}" for name in fields))


if __name__ == "__main__":
    main()
