"""A single self-contained HTML page: each member's state over time as seen by
each observer (inline SVG bars), fault injections marked, and summary tables.

Rules: no external resources, no script; every string from a log is escaped;
the page is deterministic for the same input. Colours are shared with the
legend so the picture explains itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from gossip.logs.render_text import DETECTION_HEADER, detection_row
from gossip.logs.render_text import seconds as _t
from gossip.logs.summary import Summary
from gossip.logs.views import Fault, Views

STATE_COLOURS = {
    "alive": "#2e9d5b",
    "suspect": "#e8a317",
    "dead": "#d1393b",
    "left": "#7a5ab8",
    "gone": "#9aa0a6",
}
FAULT_COLOURS = {
    "kill": "#b00020",
    "pause": "#e65100",
    "partition": "#1565c0",
    "loss": "#6d4c41",
    "rate": "#00838f",
    "delay": "#558b2f",
}
WIDTH = 960
LABEL = 110
ROW = 16
GAP = 4
LABEL_ROWS = 3
TOP = 16 + LABEL_ROWS * 10  # fault labels, then the time axis

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}h3{font-size:14px;margin:16px 0 4px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:2px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.legend span{display:inline-block;margin-right:14px}.sw{display:inline-block;width:12px;
height:12px;margin-right:4px;vertical-align:-1px}svg text{font:11px system-ui,sans-serif}
"""


class _Scale:
    def __init__(self, start: float, end: float) -> None:
        self.start = start
        self.span = max(end - start, 1e-3)

    def x(self, t: float) -> float:
        return round(LABEL + (t - self.start) / self.span * (WIDTH - LABEL - 10), 1)


def _axis(scale: _Scale, origin: float, height: int) -> list[str]:
    parts: list[str] = []
    step = _tick_step(scale.span)
    first = -(-(scale.start - origin) // step) * step  # the first tick at or after the start
    t = first + 0.0  # no "-0"
    while origin + t <= scale.start + scale.span:
        x = scale.x(origin + t)
        parts.append(f'<line x1="{x}" y1="{TOP - 4}" x2="{x}" y2="{height}" stroke="#eee"/>')
        label = f'<text x="{x}" y="{TOP - 6}" text-anchor="middle" fill="#777">{t:g}s</text>'
        parts.append(label)
        t += step
    return parts


def _tick_step(span: float) -> float:
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600):
        if span / step <= 12:
            return float(step)
    return 7200.0


def _fault_marks(
    faults: Sequence[Fault], member: str, scale: _Scale, end: float, height: int
) -> list[str]:
    parts: list[str] = []
    row_ends = [0.0] * LABEL_ROWS  # where each label row is free again (px)
    for fault in faults:
        colour = FAULT_COLOURS.get(fault.action, "#555")
        x0 = scale.x(fault.start)
        x1 = scale.x(fault.end if fault.end is not None else end)
        label = f"{fault.action} {fault.target}"
        if fault.target == member or member in fault.nodes or _in_groups(fault, member):
            parts.append(
                _rect(x0, TOP - 2, x1 - x0, height - TOP + 2, colour, label, ' fill-opacity="0.10"')
            )
        # Labels of faults close in time go on the next free row, not on top of each other.
        row = next((r for r, free in enumerate(row_ends) if free <= x0), LABEL_ROWS - 1)
        row_ends[row] = x0 + 4 + len(label) * 6.5
        y = 10 + row * 10
        parts.append(
            f'<text x="{x0 + 2}" y="{y}" fill="{colour}">{escape(label)}</text>'
            f'<line x1="{x0}" y1="{y + 2}" x2="{x0}" y2="{height}" stroke="{colour}" '
            f'stroke-width="2" stroke-dasharray="4 2"><title>{escape(label)}</title></line>'
        )
    return parts


def _rect(x: float, y: float, w: float, h: float, fill: str, tip: str = "", extra: str = "") -> str:
    """An SVG rectangle at least one pixel wide, with an optional tooltip."""
    title = f"<title>{escape(tip)}</title>" if tip else ""
    return (
        f'<rect x="{x}" y="{y}" width="{max(round(w, 1), 1)}" height="{h}" fill="{fill}"{extra}>'
        f"{title}</rect>"
    )


def _in_groups(fault: Fault, member: str) -> bool:
    return any(member in group for group in fault.groups())


def member_svg(member: str, views: Views, faults: Sequence[Fault], origin: float) -> str:
    """One chart: a row per observer, a bar per held state."""
    observers = [o for o in views.observers if o != member]
    height = TOP + len(observers) * (ROW + GAP) + 4
    scale = _Scale(views.start, views.end)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'role="img" aria-label="{escape(member)} as seen by each observer">'
    ]
    parts += _axis(scale, origin, height)
    for row, observer in enumerate(observers):
        y = TOP + row * (ROW + GAP)
        parts.append(
            f'<text x="{LABEL - 6}" y="{y + ROW - 4}" text-anchor="end">{escape(observer)}</text>'
        )
        parts.append(_rect(LABEL, y, WIDTH - LABEL - 10, ROW, "#f4f4f4"))
        for a, b in views.lifetimes.get(observer, ()):
            running = f"{observer} running"
            parts.append(
                _rect(scale.x(a), y + ROW - 2, scale.x(b) - scale.x(a), 2, "#555", running)
            )
        for iv in views.of(member, observer):
            x0, x1 = scale.x(iv.start), scale.x(iv.end)
            tip = (
                f"{observer} saw {member} {iv.state} from {iv.start - origin:.3f}s "
                f"to {iv.end - origin:.3f}s ({iv.reason})"
            )
            colour = STATE_COLOURS.get(iv.state, "#000")
            parts.append(_rect(x0, y, x1 - x0, ROW - 3, colour, tip))
    parts += _fault_marks(faults, member, scale, views.end, height)
    parts.append("</svg>")
    return "\n".join(parts)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _legend() -> str:
    items = [
        f'<span><i class="sw" style="background:{c}"></i>{escape(s)}</span>'
        for s, c in STATE_COLOURS.items()
    ]
    items += [
        f'<span><i class="sw" style="background:{c}"></i>{escape(a)}</span>'
        for a, c in FAULT_COLOURS.items()
    ]
    return (
        '<p class="legend">'
        + "".join(items)
        + " (dashed line: fault injected; band: fault on this member)</p>"
    )


def render(summary: Summary, views: Views, title: str = "gossip cluster report") -> str:
    origin = summary.origin
    sections = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>{len(summary.observers)} observers, {len(summary.members)} members, "
        f"{summary.duration:.1f} s of logs. Views agree at the end: "
        f"<b>{'yes' if summary.views_agree_at_end else 'no'}</b>; settled since "
        f"{escape(_t(summary.settled_at))} s.</p>",
        _legend(),
        "<h2>Each member as seen by each observer</h2>",
    ]
    for member in summary.members:
        sections.append(f"<h3>{escape(member)}</h3>")
        sections.append(member_svg(member, views, summary.faults, origin))
    sections.append("<h2>Faults</h2>")
    sections.append(
        _table(
            ["action", "target", "start (s)", "end (s)"],
            [
                [
                    f.action,
                    f.target,
                    _t(f.start - origin),
                    _t(None if f.end is None else f.end - origin),
                ]
                for f in summary.faults
            ],
        )
    )
    sections.append("<h2>Detection latency from the fault (s)</h2>")
    sections.append(
        "<p>Per fault: how many observers it cut off from a member, then over those "
        "(observer, member) pairs the count, first, median and last latency to a "
        "suspicion and to a failure; then when all running views agreed again, "
        "from the fault and from its clearing.</p>"
    )
    rows = [detection_row(d) for d in summary.detections]
    sections.append(_table(DETECTION_HEADER, rows))
    sections.append("<h2>False verdicts</h2>")
    verdicts = summary.false_suspicions + summary.false_failures
    sections.append(
        _table(
            ["time (s)", "observer", "event", "member"],
            [[_t(v.time), v.observer, v.event, v.member] for v in verdicts],
        )
    )
    if summary.early_stops:
        sections.append("<h2>Agents that stopped before the scenario ended</h2>")
        sections.append(
            _table(["time (s)", "agent"], [[_t(v.time), v.observer] for v in summary.early_stops])
        )
    if summary.counts:
        sections.append("<h2>Event counts per node</h2>")
        sections.append(
            _table(
                ["event", "per node"],
                [
                    [n, ", ".join(f"{k}={c}" for k, c in per.items())]
                    for n, per in summary.counts.items()
                ],
            )
        )
    sections.append(f"<p>Lines read: {escape(str(summary.read))}</p>")
    sections.append("</body></html>")
    return "\n".join(sections) + "\n"
