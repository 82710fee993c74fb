"""Benchmark of `gossip logs` on a large synthetic run: N agents, each logging
membership flaps of the others, plus a scenario log with kills and restarts.

    python3 tools/bench_logs.py [--nodes 20] [--lines-per-node 5000]

Prints lines read per second, and the seconds the summary and the HTML report
take, side by side for two sizes (the second twice the first) so the growth
ratio shows whether the work stays linear.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gossip.logs.html_report import render
from gossip.logs.records import format_timestamp, load
from gossip.logs.summary import summarize

EVENTS = [
    ("member_suspected", "suspect"),
    ("member_refuted", "alive"),
    ("member_failed", "dead"),
    ("member_joined", "alive"),
]


def write_run(folder: Path, nodes: int, per_node: int, seed: int = 1) -> int:
    rng = random.Random(seed)
    t0 = 1_800_000_000.0
    names = [f"n{i}" for i in range(1, nodes + 1)]
    span = per_node * 0.05
    for name in names:
        lines = [{"timestamp": format_timestamp(t0), "event": "agent_started", "node": name}]
        for k in range(per_node):
            event, state = rng.choice(EVENTS)
            other = rng.choice([n for n in names if n != name])
            lines.append(
                {
                    "timestamp": format_timestamp(t0 + k * 0.05 + rng.random() * 0.05),
                    "event": event,
                    "node": name,
                    "member": other,
                    "state": state,
                    "incarnation": k // 100,
                }
            )
        (folder / f"{name}.log").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    scenario = [{"timestamp": format_timestamp(t0), "event": "scenario_started"}]
    for k in range(10):
        at = t0 + span * (k + 0.5) / 10
        scenario.append(
            {
                "timestamp": format_timestamp(at),
                "event": "fault_injected",
                "action": "kill",
                "target": names[k % nodes],
            }
        )
        scenario.append(
            {
                "timestamp": format_timestamp(at + 1),
                "event": "fault_cleared",
                "action": "restart",
                "target": names[k % nodes],
            }
        )
    (folder / "scenario.log").write_text("\n".join(json.dumps(x) for x in scenario) + "\n")
    return nodes * (per_node + 1) + len(scenario)


def measure(nodes: int, per_node: int) -> tuple[int, float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        lines = write_run(folder, nodes, per_node)
        began = time.perf_counter()
        logs = load([folder])
        read = time.perf_counter() - began
        began = time.perf_counter()
        summary = summarize(logs)
        summarised = time.perf_counter() - began
        began = time.perf_counter()
        assert summary.views is not None
        render(summary, summary.views)
        reported = time.perf_counter() - began
    return lines, read, summarised, reported


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--lines-per-node", type=int, default=5000)
    args = parser.parse_args()
    rows = [measure(args.nodes, args.lines_per_node), measure(args.nodes, 2 * args.lines_per_node)]
    print(f"{'lines':>8} {'read lines/s':>13} {'summary s':>10} {'report s':>9}")
    for lines, read, summarised, reported in rows:
        print(f"{lines:>8} {lines / read:>13.0f} {summarised:>10.2f} {reported:>9.2f}")
    (a, _, sa, ra), (b, _, sb, rb) = rows
    print(f"growth for {b / a:.1f}x lines: summary {sb / sa:.2f}x, report {rb / ra:.2f}x")


if __name__ == "__main__":
    main()
