"""Who saw what, when: observer views and scenario faults rebuilt from records.

Rules: pure functions over time-sorted records. An observer's view of a member
changes only on a membership event naming that member; a new `agent_started`
from an observer starts it with an empty view (a restarted process remembers
nobody). Faults come only from the scenario log: an injected fault is paired
with the first later clearing action of the matching kind on the same target.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from gossip.logs.records import Record

# Membership event -> the state the observer now holds for the member.
EVENT_STATE: dict[str, str] = {
    "member_joined": "alive",
    "member_refuted": "alive",
    "member_suspected": "suspect",
    "member_failed": "dead",
    "member_left": "left",
    "member_reaped": "gone",
}
STATES = ("alive", "suspect", "dead", "left", "gone")
DOWN_STATES = frozenset({"dead", "left", "gone"})

# Fault action -> the clearing action that ends it.
CLEARED_BY = {
    "kill": "restart",
    "pause": "resume",
    "partition": "heal",
    "loss": "loss",
    "rate": "rate",
    "delay": "delay",
}
# Faults that take a node out of the cluster (it neither answers nor observes).
NODE_FAULTS = frozenset({"kill", "pause"})


def state_of(record: Record) -> str | None:
    """The member state a membership record sets, or None if it sets none."""
    if record.member is None:
        return None
    if record.event == "member_updated":
        state = record.get_str("state")
        return state if state in STATES else None
    return EVENT_STATE.get(record.event)


@dataclass(frozen=True, slots=True)
class Interval:
    observer: str
    member: str
    state: str
    start: float
    end: float
    reason: str


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault; `end` is when it was cleared (None: never)."""

    action: str
    target: str
    start: float
    end: float | None
    detail: dict[str, object] = field(default_factory=dict)

    @property
    def nodes(self) -> tuple[str, ...]:
        """Nodes that the fault takes down (kill/pause), else none."""
        return (self.target,) if self.action in NODE_FAULTS else ()

    def explains(self, observer: str, member: str, t: float, grace: float = 0.0) -> bool:
        """Whether this fault explains `observer` losing sight of `member` at `t`
        (a suspicion or failure up to `grace` seconds after the fault cleared)."""
        if t < self.start or (self.end is not None and t > self.end + grace):
            return False
        if self.action in NODE_FAULTS:
            return member == self.target
        if self.action == "partition":
            side = {name: i for i, group in enumerate(self.groups()) for name in group}
            return observer in side and member in side and side[observer] != side[member]
        return False

    def groups(self) -> list[list[str]]:
        groups = self.detail.get("groups")
        if not isinstance(groups, list):
            return []
        return [[n for n in g if isinstance(n, str)] for g in groups if isinstance(g, list)]


def faults_from(records: Iterable[Record]) -> list[Fault]:
    """Pair injected and cleared scenario records into faults."""
    open_faults: list[tuple[Record, str, str]] = []  # (record, action, target)
    done: list[Fault] = []
    for record in records:
        if record.kind != "scenario":
            continue
        action = record.get_str("action") or ""
        target = record.get_str("target") or "*"
        if record.event == "fault_injected" and action in CLEARED_BY:
            open_faults.append((record, action, target))
        elif record.event == "fault_cleared":
            for index, (opened, o_action, o_target) in enumerate(open_faults):
                if CLEARED_BY[o_action] == action and (o_target == target or target == "*"):
                    done.append(_fault(opened, o_action, o_target, record.time))
                    del open_faults[index]
                    break
    done.extend(_fault(r, a, t, None) for r, a, t in open_faults)
    done.sort(key=lambda f: f.start)
    return done


def _fault(record: Record, action: str, target: str, end: float | None) -> Fault:
    skip = {"timestamp", "event", "action", "target", "level"}
    detail = {k: v for k, v in record.fields.items() if k not in skip}
    return Fault(action=action, target=target, start=record.time, end=end, detail=detail)


@dataclass
class Views:
    """Every observer's view over time, plus each observer's lifetimes."""

    intervals: list[Interval]
    lifetimes: dict[str, list[tuple[float, float]]]
    start: float
    end: float
    _index: dict[tuple[str, str], list[Interval]] | None = field(default=None, repr=False)

    @property
    def observers(self) -> list[str]:
        return sorted(self.lifetimes)

    @property
    def members(self) -> list[str]:
        names = {i.member for i in self.intervals} | set(self.lifetimes)
        return sorted(names)

    def of(self, member: str, observer: str) -> list[Interval]:
        if self._index is None:
            self._index = {}
            for i in self.intervals:
                self._index.setdefault((i.member, i.observer), []).append(i)
        return self._index.get((member, observer), [])


def build_views(records: Sequence[Record], faults: Sequence[Fault] = ()) -> Views:
    """Rebuild intervals of held state per (observer, member).

    A view ends when its observer stops: at `agent_stopped`, at a scenario kill
    of that observer, or at the end of the logs.
    """
    agent = [r for r in records if r.kind == "agent"]
    start = records[0].time if records else 0.0
    end = records[-1].time if records else 0.0
    current: dict[tuple[str, str], tuple[str, float, str]] = {}
    intervals: list[Interval] = []
    lifetimes: dict[str, list[tuple[float, float]]] = {}
    stopped: dict[str, float] = {}

    def close(key: tuple[str, str], at: float) -> None:
        state, since, reason = current.pop(key)
        intervals.append(Interval(key[0], key[1], state, since, max(at, since), reason))

    def stop_time(observer: str, before: float) -> float:
        if observer in stopped:
            return stopped[observer]
        kills = [f.start for f in faults if f.action == "kill" and f.target == observer]
        kills = [t for t in kills if t <= before and t >= lifetimes[observer][-1][0]]
        return max(kills) if kills else before

    for record in agent:
        observer = record.node
        assert observer is not None  # agent records always carry a node
        spans = lifetimes.setdefault(observer, [])
        if record.event == "agent_started" or not spans:
            if spans:
                at = stop_time(observer, record.time)
                spans[-1] = (spans[-1][0], at)
                for key in [k for k in current if k[0] == observer]:
                    close(key, at)
            stopped.pop(observer, None)
            spans.append((record.time, record.time))
        else:
            spans[-1] = (spans[-1][0], record.time)
        if record.event == "agent_stopped":
            stopped[observer] = record.time
        state = state_of(record)
        if state is None or record.member is None or record.member == observer:
            continue
        key = (observer, record.member)
        if key in current:
            if current[key][0] == state:
                continue
            close(key, record.time)
        current[key] = (state, record.time, record.event)
    for observer, spans in lifetimes.items():
        at = stop_time(observer, end)
        spans[-1] = (spans[-1][0], at)
        for key in [k for k in current if k[0] == observer]:
            close(key, at)
    intervals.sort(key=lambda i: (i.member, i.observer, i.start))
    return Views(intervals=intervals, lifetimes=lifetimes, start=start, end=end)
