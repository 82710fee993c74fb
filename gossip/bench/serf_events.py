"""Figures of the events-and-queries comparison with Serf (tools/bench_events.py).

Rules: pure — nothing here starts a process or reads a clock. The tool hands in
what its handlers wrote, the lines a query printed and the times it saw them,
and gets back figures and a table. Input is bounded: malformed or oversized
lines are skipped, never fatal. A delivery is one (agent, event) pair; it is
exactly once when that agent's handler ran exactly once for that event.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_LINE = 512
SERF_REPLY = re.compile(r"^(Ack|Response) from '([^']{1,256})'")


def parse_handler_runs(text: str) -> list[tuple[float, str]]:
    """`<unix time> <event name>` lines, one per handler run, in file order."""
    runs = []
    for line in text.splitlines():
        parts = line[:MAX_LINE].split()
        if len(parts) != 2:
            continue
        try:
            runs.append((float(parts[0]), parts[1]))
        except ValueError:
            continue
    return runs


def parse_serf_reply(line: str) -> tuple[str, str] | None:
    """("ack" | "response", node) from a line of `serf query`'s text output."""
    match = SERF_REPLY.match(line[:MAX_LINE])
    if not match:
        return None
    return match.group(1).lower(), match.group(2)


@dataclass(frozen=True)
class Delivery:
    expected: int
    exactly_once: int
    duplicates: int
    """Handler runs beyond the first, summed over every (agent, event)."""
    missing: int
    """(agent, event) pairs whose handler never ran."""


def delivery(runs: Mapping[str, Sequence[tuple[float, str]]], events: Sequence[str]) -> Delivery:
    once = dup = missing = 0
    for agent_runs in runs.values():
        names = [name for _, name in agent_runs]
        for event in events:
            count = names.count(event)
            once += count == 1
            dup += max(0, count - 1)
            missing += count == 0
    return Delivery(len(runs) * len(events), once, dup, missing)


def last_first_run(runs: Mapping[str, Sequence[tuple[float, str]]], event: str) -> float | None:
    """When the last agent first ran its handler for `event`; None while one has not."""
    firsts = []
    for agent_runs in runs.values():
        times = [t for t, name in agent_runs if name == event]
        if not times:
            return None
        firsts.append(min(times))
    return max(firsts) if firsts else None


@dataclass(frozen=True)
class QueryRun:
    expected: int
    acks: int
    answers: int
    to_last_answer_s: float | None
    """Seconds from the request to the last distinct answer; None with no answer."""


def query_run(t0: float, replies: Iterable[tuple[float, str, str]], expected: int) -> QueryRun:
    """Figures of one query from (time seen, "ack" | "response", node) replies;
    a node's repeated ack or answer counts once, at its first arrival."""
    first: dict[tuple[str, str], float] = {}
    for seen, kind, node in replies:
        first.setdefault((kind, node), seen)
    answers = [t for (kind, _), t in first.items() if kind == "response"]
    acks = sum(kind == "ack" for kind, _ in first)
    return QueryRun(expected, acks, len(answers), max(answers) - t0 if answers else None)


@dataclass
class Side:
    """One implementation's figures at one cluster size and loss."""

    impl: str
    agents: int
    loss_pct: float
    event_latencies: list[float | None] = field(default_factory=list)
    delivery: Delivery | None = None
    queries: list[QueryRun] = field(default_factory=list)
    event_bytes_per_agent: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Side:
        d = data.get("delivery")
        return cls(
            impl=str(data["impl"]),
            agents=int(data["agents"]),
            loss_pct=float(data["loss_pct"]),
            event_latencies=[None if x is None else float(x) for x in data["event_latencies"]],
            delivery=Delivery(**d) if d else None,
            queries=[QueryRun(**q) for q in data["queries"]],
            event_bytes_per_agent=data.get("event_bytes_per_agent"),
        )


def _median_max(values: Sequence[float | None]) -> tuple[str, str]:
    got = [v for v in values if v is not None]
    if not got:
        return "n/a", "n/a"
    return f"{statistics.median(got):.3f}", f"{max(got):.3f}"


COLUMNS = (
    ("N", 4), ("loss", 6), ("impl", 7), ("ev med s", 9), ("ev max s", 9), ("ev lost", 8),
    ("once/exp", 10), ("dup", 4), ("miss", 5), ("q med s", 8), ("q max s", 8),
    ("answers/exp", 12), ("acks/exp", 10), ("ev B/agent", 11),
)  # fmt: skip


def table_row(side: Side) -> list[str]:
    ev_med, ev_max = _median_max(side.event_latencies)
    lost = sum(x is None for x in side.event_latencies)
    d = side.delivery
    q_med, q_max = _median_max([q.to_last_answer_s for q in side.queries])
    expected = sum(q.expected for q in side.queries)
    answers = sum(q.answers for q in side.queries)
    acks = sum(q.acks for q in side.queries)
    b = side.event_bytes_per_agent
    return [
        str(side.agents), f"{side.loss_pct:g}%", side.impl, ev_med, ev_max, str(lost),
        f"{d.exactly_once}/{d.expected}" if d else "n/a",
        str(d.duplicates) if d else "n/a", str(d.missing) if d else "n/a",
        q_med, q_max, f"{answers}/{expected}", f"{acks}/{expected}",
        f"{b:.0f}" if b is not None else "n/a",
    ]  # fmt: skip


def render_table(sides: Sequence[Side]) -> str:
    lines = ["".join(f"{name:>{width}}" for name, width in COLUMNS)]
    for side in sides:
        cells = table_row(side)
        lines.append("".join(f"{c:>{w}}" for c, (_, w) in zip(cells, COLUMNS, strict=True)))
    return "\n".join(lines)


def median_ratios(sides: Sequence[Side]) -> list[str]:
    """'N=20 loss 10%: event gossip/serf 0.52, query 0.98' for each size and loss."""
    out = []
    by_key: dict[tuple[int, float], dict[str, Side]] = {}
    for s in sides:
        by_key.setdefault((s.agents, s.loss_pct), {})[s.impl] = s
    for (n, loss), pair in by_key.items():
        if "gossip" not in pair or "serf" not in pair:
            continue
        parts = []
        for label, pick in (
            ("event", lambda s: s.event_latencies),
            ("query", lambda s: [q.to_last_answer_s for q in s.queries]),
        ):
            g = [v for v in pick(pair["gossip"]) if v is not None]
            s_ = [v for v in pick(pair["serf"]) if v is not None]
            if g and s_ and statistics.median(s_) > 0:
                parts.append(f"{label} {statistics.median(g) / statistics.median(s_):.2f}")
        if parts:
            out.append(f"N={n} loss {loss:g}%: median gossip / serf: " + ", ".join(parts))
    return out
