#!/usr/bin/env python3
"""How well Vivaldi coordinates learn a WAN's round trips, in the simulator.

Each row: --nodes hosts spread over D datacentres (gossip/sim/wan.py: real
places, uneven route detours, per-host access delays), coordinates on, lan
timings, --duration simulated seconds; then every node's estimate of every
other's round trip against the true one. Printed per row: pairs compared, the
median and 90th-percentile relative error, the median absolute error, and the
round-trip samples each node took. Seeded: a row replays exactly.
Example: python3 tools/bench_coordinates.py --nodes 50 --duration 300 --dcs 3 5 7
"""

from __future__ import annotations

import argparse

from gossip.sim.wan import DATACENTRES, check_coordinates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=50, choices=range(2, 501), metavar="N")
    parser.add_argument("--duration", type=float, default=300.0, help="simulated seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--dcs", type=int, nargs="+", default=[3, 5, 7], choices=range(1, len(DATACENTRES) + 1)
    )
    args = parser.parse_args()
    if not 0 < args.duration <= 3600:
        parser.error("want 0 < --duration <= 3600")
    columns = ("dcs", 4), ("pairs", 7), ("median rel", 11), ("p90 rel", 8), ("median abs", 11)
    print(" ".join(f"{name:>{width}}" for name, width in columns), f"{'samples':>8}")
    for dcs in args.dcs:
        r = check_coordinates(args.nodes, dcs, args.duration, args.seed)
        print(
            f"{dcs:>4} {r.pairs:>7} {r.median_relative_error:>10.1%} "
            f"{r.p90_relative_error:>8.1%} {r.median_abs_error_ms:>8.2f} ms "
            f"{r.samples_per_node:>8.0f}"
        )


if __name__ == "__main__":
    main()
