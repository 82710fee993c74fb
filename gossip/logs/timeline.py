"""One merged, time-ordered view of many logs, filtered and formatted.

Rules: filters match exactly on node, member (the subject, or a scenario
action's target) and event names; text output is one line per record, with
ANSI colour only when asked for; JSON output is one object per line with the
record's own fields plus `source`.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass

from gossip.logs.records import Record, format_timestamp

# Events worth a colour, by how bad they are.
_COLOURS = {
    "member_failed": "31",  # red
    "member_suspected": "33",  # yellow
    "probe_timed_out": "33",
    "member_refuted": "32",  # green
    "member_joined": "32",
    "self_refuted": "36",  # cyan
    "member_left": "35",  # magenta
    "fault_injected": "1;41",  # bold on red
    "fault_cleared": "1;42",  # bold on green
    "datagram_rejected": "35",
}
_SHOWN_FIRST = ("member", "state", "incarnation", "accuser", "action", "target")
_HIDDEN = frozenset({"timestamp", "event", "node", "level", "member"})
MAX_VALUE_CHARS = 120


@dataclass(frozen=True, slots=True)
class Filter:
    nodes: Collection[str] = ()
    members: Collection[str] = ()
    events: Collection[str] = ()

    def accepts(self, record: Record) -> bool:
        if self.events and record.event not in self.events:
            return False
        if self.nodes and record.node not in self.nodes:
            return False
        if self.members:
            subject = record.member if record.kind == "agent" else record.get_str("target")
            if subject not in self.members:
                return False
        return True


def select(records: Iterable[Record], where: Filter) -> Iterator[Record]:
    return (r for r in records if where.accepts(r))


def _value(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def format_record(record: Record, origin: float, *, colour: bool = False) -> str:
    """`HH:MM:SS.mmm +rel  node  event  key=value ...`."""
    clock = format_timestamp(record.time)[11:23]
    rel = f"{record.time - origin:+9.3f}s"
    who = record.node if record.node is not None else "[scenario]"
    keys = [k for k in _SHOWN_FIRST if k in record.fields or (k == "member" and record.member)]
    keys += sorted(k for k in record.fields if k not in _HIDDEN and k not in keys)
    pairs = " ".join(f"{k}={_value(record.fields.get(k, record.member))}" for k in keys)
    event = f"{record.event:<20}"
    if colour and record.event in _COLOURS:
        event = f"\x1b[{_COLOURS[record.event]}m{event}\x1b[0m"
    return f"{clock} {rel}  {who:<12} {event} {pairs}".rstrip()


def record_json(record: Record) -> str:
    """The record's own fields (and its source file) as one JSON line."""
    data = dict(record.fields)
    data["source"] = record.source
    return json.dumps(data, separators=(",", ":"), default=str)
