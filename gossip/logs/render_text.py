"""Plain-text rendering of a Summary for a terminal.

Rules: fixed-width tables, times in seconds with millisecond precision, `-`
for a missing value; no colour here (the timeline owns colour).
"""

from __future__ import annotations

from collections.abc import Sequence

from gossip.logs.summary import Detection, Spread, Summary


def seconds(value: float | None) -> str:
    """Seconds with millisecond precision, or `-` when unknown."""
    return "-" if value is None else f"{value:.3f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return lines


def _spread(s: Spread) -> list[str]:
    return [str(s.count), seconds(s.first), seconds(s.median), seconds(s.last)]


DETECTION_HEADER = [
    "fault", "target", "at", "obs", "n", "first", "median", "last",
    "n", "first", "median", "last", "agreed after", "after clearing",
]  # fmt: skip


def detection_row(d: Detection) -> list[str]:
    """One detection as table cells (shared by the text and HTML renderings)."""
    head = [d.action, d.target, seconds(d.at), str(d.observers)]
    tail = [seconds(d.settled_after), seconds(d.recovered_after)]
    return [*head, *_spread(d.suspected), *_spread(d.failed), *tail]


def render(summary: Summary) -> str:
    out: list[str] = []
    out.append(
        f"{len(summary.observers)} observers, {len(summary.members)} members, "
        f"{summary.duration:.1f} s of logs"
    )
    read = summary.read
    skipped = read.get("skipped") or {}
    if skipped:
        out.append(f"skipped lines: {skipped}")
    if summary.faults:
        out += ["", "Faults (seconds from scenario start)"]
        rows = [
            [
                f.action,
                f.target,
                seconds(f.start - summary.origin),
                seconds(None if f.end is None else f.end - summary.origin),
            ]
            for f in summary.faults
        ]
        out += table(["action", "target", "start", "end"], rows)
    if summary.detections:
        title = (
            "Detection latency from the fault (s): suspected | failed (n: observer/member pairs)"
        )
        out += ["", title]
        out += table(DETECTION_HEADER, [detection_row(d) for d in summary.detections])
    out += ["", "Transitions seen (member <- observer: time state ...)"]
    for member, by_observer in sorted(summary.transitions.items()):
        for observer, seq in sorted(by_observer.items()):
            steps = " ".join(f"{t:.3f} {s}" for t, s in seq[:12])
            more = f" (+{len(seq) - 12} more)" if len(seq) > 12 else ""
            out.append(f"  {member} <- {observer}: {steps}{more}")
    out += [
        "",
        f"False suspicions: {len(summary.false_suspicions)}, "
        f"false failures: {len(summary.false_failures)}",
    ]
    for v in (summary.false_suspicions + summary.false_failures)[:20]:
        out.append(f"  {v.time:.3f} {v.observer} {v.event} {v.member}")
    for v in summary.early_stops:
        out.append(f"  {v.time:.3f} {v.observer} stopped before the scenario ended (crash?)")
    agreed = "yes" if summary.views_agree_at_end else "no"
    out.append(f"Views agree at the end: {agreed}; settled since {seconds(summary.settled_at)} s")
    if summary.counts:
        out += ["", "Event counts per node"]
        rows = [
            [name, ", ".join(f"{n}={c}" for n, c in per.items())]
            for name, per in summary.counts.items()
        ]
        out += table(["event", "per node"], rows)
    return "\n".join(out) + "\n"
