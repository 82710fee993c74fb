"""Failure detection: how soon the first and the last observer mark a crashed member dead.

Rules: runs the simulator's standard scenario (`gossip simulate`: the cluster forms, then one
member crashes) once per seed, so the figures replay exactly; only the time taken differs.
For each run, "first" and "all" are seconds from the crash until the first and the last
observer declared it dead, and "spread" is all - first: how long the slowest observer lagged
behind the others. A run whose spread exceeds two probe intervals counts as a straggler (the
death broadcast and every second accuser missed that observer). The defaults are the
cluster of the netns emulation test (5 agents, local profile, 10 % loss); its timing belongs
here, where it is printed, not in a test's bound.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gossip.core.membership.config import PROFILES, Config
from gossip.core.membership.lifeguard import suspicion_min_timeout
from gossip.sim.scenario import Scenario, run_scenario


@dataclass(frozen=True)
class Figures:
    runs: int
    undetected: int
    first: tuple[float, float, float]
    """Median, 90th percentile and maximum over the runs, in seconds."""
    every: tuple[float, float, float]
    spread: tuple[float, float, float]
    stragglers: list[int]
    """Seeds whose slowest observer lagged more than two probe intervals."""
    false_deaths: int
    longest_timeout: float
    """The longest (unconfirmed) suspicion timeout, the protocol's own bound."""


def _stats(values: Sequence[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    if not ordered:
        nan = float("nan")
        return (nan, nan, nan)
    p90 = ordered[max(0, int(0.9 * len(ordered) + 0.5) - 1)]
    return (statistics.median(ordered), p90, ordered[-1])


def measure(
    nodes: int, profile: str, loss: float, seeds: Sequence[int], duration: float = 60.0
) -> Figures:
    results: list[dict[str, Any]] = [
        run_scenario(
            Scenario(nodes=nodes, duration=duration, loss=loss, crash=1, seed=s, profile=profile)
        )
        for s in seeds
    ]
    detected = [r for r in results if r["detect_all_s"] is not None]
    cfg = Config.for_profile(profile)
    lag = 2 * cfg.probe_interval
    return Figures(
        runs=len(results),
        undetected=len(results) - len(detected),
        first=_stats([r["detect_first_s"] for r in detected]),
        every=_stats([r["detect_all_s"] for r in detected]),
        spread=_stats([r["detect_all_s"] - r["detect_first_s"] for r in detected]),
        stragglers=[r["seed"] for r in detected if r["detect_all_s"] - r["detect_first_s"] > lag],
        false_deaths=sum(r["false_deaths"] for r in results),
        longest_timeout=cfg.suspicion_max_timeout_mult
        * suspicion_min_timeout(cfg.suspicion_mult, nodes, cfg.probe_interval),
    )


def report(f: Figures, nodes: int, profile: str, loss: float, seconds: float) -> str:
    def row(title: str, values: tuple[float, float, float]) -> str:
        return f"  {title:<34}" + "".join(f"{v:>9.2f}" for v in values)

    return "\n".join(
        [
            f"detection: {nodes} nodes, {profile} profile, {loss:.0%} loss, one crash,"
            f" {f.runs} seeds ({seconds:.1f} s)",
            f"  {'seconds after the crash':<34}{'median':>9}{'p90':>9}{'max':>9}",
            row("first observer declares it dead", f.first),
            row("last observer declares it dead", f.every),
            row("spread (last - first)", f.spread),
            f"  stragglers (spread > 2 probe intervals): {len(f.stragglers)}"
            + (f" (seeds {', '.join(map(str, f.stragglers))})" if f.stragglers else ""),
            f"  never detected by everyone: {f.undetected}; false deaths: {f.false_deaths}",
            f"  longest suspicion timeout (the protocol's bound per observer):"
            f" {f.longest_timeout:.1f} s",
        ]
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", type=int, default=5, help="cluster size (default 5)")
    parser.add_argument(
        "--profile", choices=sorted(PROFILES), default="local", help="(default local)"
    )
    parser.add_argument("--loss", type=float, default=0.1, help="datagram loss (default 0.1)")
    parser.add_argument("--seeds", type=int, default=100, help="runs, seeds 1..N (default 100)")


def run(args: argparse.Namespace) -> int:
    if args.nodes < 4 or args.seeds < 1 or not 0.0 <= args.loss < 1.0:
        print("bench detection: needs --nodes >= 4, --seeds >= 1 and 0 <= --loss < 1")
        return 2
    started = time.perf_counter()
    figures = measure(args.nodes, args.profile, args.loss, range(1, args.seeds + 1))
    print(report(figures, args.nodes, args.profile, args.loss, time.perf_counter() - started))
    return 0
