"""What a set of logs says happened: detection latencies, false verdicts,
convergence, ownership and repair counts.

Rules: pure functions of records. Latencies are measured from the scenario's
own fault timestamps when a scenario log is given; without one, a suspicion
later refuted counts as false and no detection latency is claimed. Every time
in the output is seconds relative to `origin` (the scenario start, else the
first record), rounded to milliseconds.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from gossip.logs.records import LogSet, Record, format_timestamp
from gossip.logs.views import (
    DOWN_STATES,
    NODE_FAULTS,
    Fault,
    Views,
    build_views,
    faults_from,
    state_of,
)

DEFAULT_GRACE = 5.0
DETECTION_FAULTS = ("kill", "pause", "partition")
# How a transition reads in the summary: the event, where it says more than the state.
_LABELS = {
    "member_joined": "joined",
    "member_refuted": "refuted",
    "member_failed": "failed",
    "member_reaped": "reaped",
}


def _r(value: float) -> float:
    return round(value, 3)


@dataclass(frozen=True, slots=True)
class Spread:
    """First, median and last of a set of latencies, with how many there were."""

    count: int
    first: float | None
    median: float | None
    last: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            return cls(0, None, None, None)
        ordered = sorted(values)
        return cls(len(ordered), _r(ordered[0]), _r(statistics.median(ordered)), _r(ordered[-1]))

    def to_dict(self) -> dict[str, object]:
        return {"count": self.count, "first": self.first, "median": self.median, "last": self.last}


@dataclass(frozen=True, slots=True)
class Detection:
    """How long the observers took to suspect and fail the members a fault cut
    them off from (a killed or paused node; the far side of a partition).
    Spreads are over (observer, member) pairs; `observers` counts observers."""

    action: str
    target: str
    at: float
    observers: int
    suspected: Spread
    failed: Spread
    settled_after: float | None
    recovered_after: float | None = None  # all affected observers held it up again

    def to_dict(self) -> dict[str, object]:
        return {
            "action": self.action,
            "target": self.target,
            "at": self.at,
            "observers": self.observers,
            "suspected": self.suspected.to_dict(),
            "failed": self.failed.to_dict(),
            "settled_after": self.settled_after,
            "recovered_after": self.recovered_after,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """One suspicion or failure that no fault explains."""

    time: float
    observer: str
    member: str
    event: str

    def to_dict(self) -> dict[str, object]:
        return {
            "time": self.time,
            "observer": self.observer,
            "member": self.member,
            "event": self.event,
        }


@dataclass
class Summary:
    origin: float
    duration: float
    observers: list[str]
    members: list[str]
    transitions: dict[str, dict[str, list[tuple[float, str]]]]
    faults: list[Fault]
    detections: list[Detection]
    false_suspicions: list[Verdict]
    false_failures: list[Verdict]
    views_agree_at_end: bool
    settled_at: float | None
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    read: dict[str, object] = field(default_factory=dict)
    early_stops: list[Verdict] = field(default_factory=list)
    views: Views | None = field(default=None, repr=False)  # for drawing; not in to_dict

    def to_dict(self) -> dict[str, object]:
        return {
            "origin": format_timestamp(self.origin),
            "duration": self.duration,
            "observers": self.observers,
            "members": self.members,
            "transitions": {
                m: {o: [{"time": t, "state": s} for t, s in seq] for o, seq in by_obs.items()}
                for m, by_obs in self.transitions.items()
            },
            "faults": [
                {
                    "action": f.action,
                    "target": f.target,
                    "start": _r(f.start - self.origin),
                    "end": None if f.end is None else _r(f.end - self.origin),
                    **f.detail,
                }
                for f in self.faults
            ],
            "detections": [d.to_dict() for d in self.detections],
            "false_suspicions": [v.to_dict() for v in self.false_suspicions],
            "false_failures": [v.to_dict() for v in self.false_failures],
            "views_agree_at_end": self.views_agree_at_end,
            "settled_at": self.settled_at,
            "counts": self.counts,
            "read": self.read,
            "early_stops": [v.to_dict() for v in self.early_stops],
        }


def summarize(logs: LogSet, *, grace: float = DEFAULT_GRACE) -> Summary:
    records = logs.records
    faults = faults_from(records)
    views = build_views(records, faults)
    starts = [r.time for r in records if r.event == "scenario_started"]
    origin = starts[0] if starts else (records[0].time if records else 0.0)
    agent = logs.agent_records
    transitions: dict[str, dict[str, list[tuple[float, str]]]] = {}
    for record in agent:
        state = state_of(record)
        if state is None or record.member is None or record.node is None:
            continue
        seq = transitions.setdefault(record.member, {}).setdefault(record.node, [])
        seq.append((_r(record.time - origin), _LABELS.get(record.event, state)))
    have_scenario = bool(logs.scenario_records)
    suspicions, failures = _false_verdicts(agent, faults, have_scenario, grace, origin)
    # Judge agreement up to the end of the scenario, before the agents' own shutdown.
    finished = [r.time for r in records if r.event == "scenario_finished"]
    finish = finished[0] if finished else views.end
    agree_times = _agreement_changes(views, faults, finish)
    detections = [
        _detection(fault, agent, views, faults, agree_times, origin, grace, finish)
        for fault in faults
        if fault.action in DETECTION_FAULTS
    ]
    final_agree = agree_times[-1][1] if agree_times else True
    settled = _settled(agree_times, views.start, finish)
    return Summary(
        origin=origin,
        duration=_r(views.end - origin),
        observers=views.observers,
        members=views.members,
        transitions=transitions,
        faults=faults,
        detections=detections,
        false_suspicions=suspicions,
        false_failures=failures,
        views_agree_at_end=final_agree,
        settled_at=None if settled is None else _r(settled - origin),
        counts=_counts(agent),
        early_stops=[
            Verdict(_r(v.time - origin), v.observer, v.member, v.event)
            for v in _early_stops(agent, finish, have_scenario)
        ],
        read=logs.total_stats().to_dict(),
        views=views,
    )


def _detection(
    fault: Fault,
    agent: Sequence[Record],
    views: Views,
    faults: Sequence[Fault],
    agree: Sequence[tuple[float, bool]],
    origin: float,
    grace: float,
    finish: float,
) -> Detection:
    """Latency from the fault to each affected (observer, member) pair's first
    verdict, and how long until the views agreed after the fault and after it
    was cleared."""
    limit = finish if fault.end is None else fault.end + grace
    running = [o for o in views.observers if _up(views, faults, o, fault.start)]
    pairs = {
        (o, m)
        for o in running
        for m in views.members
        if o != m and fault.explains(o, m, fault.start)
    }
    first: dict[str, dict[tuple[str, str], float]] = {"member_suspected": {}, "member_failed": {}}
    for record in agent:
        pair = (record.node or "", record.member or "")
        if record.event not in first or pair not in pairs:
            continue
        if fault.start <= record.time <= limit:
            first[record.event].setdefault(pair, record.time - fault.start)
    # A failure without a logged suspicion first still counts as detection.
    for pair, latency in first["member_failed"].items():
        first["member_suspected"].setdefault(pair, latency)
    # Windows close at the next fault that cuts members off (kill, pause, partition).
    cuts = [f.start for f in faults if f.action in DETECTION_FAULTS]
    until = min([t for t in cuts if t > fault.start] + [finish, fault.end or finish])
    settled = _settled(agree, fault.start, until)
    recovered = _recovery(fault, pairs, views, faults, finish)
    return Detection(
        action=fault.action,
        target=fault.target,
        at=_r(fault.start - origin),
        observers=len({o for o, _ in pairs}),
        suspected=Spread.of(list(first["member_suspected"].values())),
        failed=Spread.of(list(first["member_failed"].values())),
        settled_after=None if settled is None else _r(settled - fault.start),
        recovered_after=recovered,
    )


def _recovery(
    fault: Fault, pairs: set[tuple[str, str]], views: Views, faults: Sequence[Fault], finish: float
) -> float | None:
    """Seconds from the fault's clearing until every affected observer still
    running held its member up again (None: not cleared, or not before `finish`)."""
    if fault.end is None or fault.end >= finish:
        return None
    back = fault.end
    for observer, member in pairs:
        if not _up(views, faults, observer, finish):
            continue
        held = [i for i in views.of(member, observer) if i.end > fault.end]
        up = next((i for i in held if i.state not in DOWN_STATES), None)
        if up is None or up.start >= finish:
            return None
        back = max(back, up.start)
    return _r(back - fault.end)


def _up(views: Views, faults: Sequence[Fault], observer: str, t: float) -> bool:
    """Whether `observer` runs at `t`: inside a lifetime and not killed or paused."""
    alive = any(a <= t <= b for a, b in views.lifetimes.get(observer, ()))
    taken = any(
        f.action in NODE_FAULTS
        and f.target == observer
        and f.start <= t
        and (f.end is None or t < f.end)
        for f in faults
    )
    return alive and not taken


def _false_verdicts(
    agent: Sequence[Record],
    faults: Sequence[Fault],
    have_scenario: bool,
    grace: float,
    origin: float,
) -> tuple[list[Verdict], list[Verdict]]:
    """Suspicions and failures that no fault explains.

    Without a scenario log a verdict is false when its member is later heard
    alive again by the same observer without having restarted in between.
    """
    suspicions: list[Verdict] = []
    failures: list[Verdict] = []
    for index, record in enumerate(agent):
        if record.event not in ("member_suspected", "member_failed"):
            continue
        observer, member = record.node, record.member
        if observer is None or member is None:
            continue
        if have_scenario:
            explained = any(f.explains(observer, member, record.time, grace) for f in faults)
        else:
            explained = not _heard_alive_again(agent, index, observer, member)
        if explained:
            continue
        verdict = Verdict(_r(record.time - origin), observer, member, record.event)
        (suspicions if record.event == "member_suspected" else failures).append(verdict)
    return suspicions, failures


def _heard_alive_again(agent: Sequence[Record], index: int, observer: str, member: str) -> bool:
    for later in agent[index + 1 :]:
        if later.node == member and later.event == "agent_started":
            return False
        if later.node == observer and later.member == member and state_of(later) == "alive":
            return True
    return False


def _agreement_changes(
    views: Views, faults: Sequence[Fault], until: float
) -> list[tuple[float, bool]]:
    """(time, all running observers hold the same up/down view) at every change.

    A member counts as up while alive or suspect; an observer counts itself up.
    One sweep over interval starts and ends keeps each observer's up-set current.
    """
    # (time, order, observer, member, up): at one instant, ends apply before starts.
    changes: list[tuple[float, int, str, str, bool]] = []
    for i in views.intervals:
        changes.append((i.end, 0, i.observer, i.member, False))
        changes.append((i.start, 1, i.observer, i.member, i.state not in DOWN_STATES))
    changes.sort(key=lambda c: (c[0], c[1]))
    others = [f.start for f in faults] + [f.end for f in faults if f.end is not None]
    others += [t for spans in views.lifetimes.values() for span in spans for t in span]
    points = sorted({c[0] for c in changes} | set(others))
    up: dict[str, set[str]] = {o: {o} for o in views.observers}
    held = {o: frozenset(v) for o, v in up.items()}  # frozensets cache their hash
    boundaries = set(others)
    running: list[str] = []
    out: list[tuple[float, bool]] = []
    index = 0
    # Every interval closes at the end of the logs: judge the state just before it.
    for t in (p for p in points if p < until):
        touched = set()
        while index < len(changes) and changes[index][0] <= t:
            _, _, observer, member, is_up = changes[index]
            if is_up:
                up[observer].add(member)
            elif member != observer:
                up[observer].discard(member)
            touched.add(observer)
            index += 1
        for observer in touched:
            held[observer] = frozenset(up[observer])
        if t in boundaries or not out:
            running = [o for o in views.observers if _up(views, faults, o, t)]
        agree = len({held[o] for o in running}) <= 1
        if not out or out[-1][1] != agree:
            out.append((t, agree))
    return out


def _settled(agree: Sequence[tuple[float, bool]], start: float, end: float) -> float | None:
    """The time from which views agreed without a break until `end` (None: never)."""
    settled: float | None = start
    for t, ok in agree:
        if t >= end:
            break
        settled = (start if t <= start else t) if ok else None
    return settled


def _counts(agent: Sequence[Record]) -> dict[str, dict[str, int]]:
    """Per-node counts of ownership, repair and rejection events."""
    wanted = (
        "ownership_changed",
        "item_acquired",
        "item_released",
        "sync_completed",
        "kv_repaired",
        "datagram_rejected",
        "probe_timed_out",
        "self_refuted",
    )
    counts: dict[str, Counter[str]] = {name: Counter() for name in (*wanted, "errors")}
    for record in agent:
        if record.node is None:
            continue
        if record.event in counts:
            counts[record.event][record.node] += 1
        if record.get_str("level") in ("error", "critical", "exception"):
            counts["errors"][record.node] += 1
    return {name: dict(sorted(c.items())) for name, c in counts.items() if c}


def _early_stops(agent: Sequence[Record], finish: float, have_scenario: bool) -> list[Verdict]:
    """Agents that stopped before the scenario finished: the emulator stops
    none mid-run (a kill leaves no line), so each is a crash or an outside stop."""
    if not have_scenario:
        return []
    return [
        Verdict(r.time, r.node or "", r.node or "", r.event)
        for r in agent
        if r.event == "agent_stopped" and r.time < finish
    ]
