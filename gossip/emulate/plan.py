"""Action planning: a scenario becomes a checked, time-ordered list of planned
actions, each with the network state that holds after it.

Rules: pure and shared by every player (namespaces here, containers
elsewhere). A step's `for` becomes a clearing action that much later. Node
actions are checked against each node's life (running, paused, killed), so a
plan never resumes a running node or restarts a live one. The network state is
a whole desired state, so a player applies it idempotently instead of keeping
its own diff.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TypeVar

from gossip.emulate.scenario import NODE_ACTIONS, Scenario, ScenarioError, Step

K = TypeVar("K")
V = TypeVar("V")

# The clearing action logged for each fault action.
_CLEAR = {"pause": "resume", "partition": "heal", "loss": "loss", "rate": "rate", "delay": "delay"}


@dataclass(frozen=True)
class NetState:
    """Every network fault in force. Loss keys: "*", a node (its input), or
    "a<->b" (a link, both ways); percent > 0."""

    loss: dict[str, float] = field(default_factory=dict)
    link_loss: dict[tuple[str, str], float] = field(default_factory=dict)
    groups: tuple[tuple[str, ...], ...] = ()
    rate: dict[str, str] = field(default_factory=dict)
    delay: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Planned:
    """One action to carry out at `at`. `event` is fault_injected or
    fault_cleared; `net` is the network state after it (None: unchanged)."""

    at: float
    event: str
    action: str
    target: str
    step: Step
    net: NetState | None = None

    def log_fields(self) -> dict[str, object]:
        fields = self.step.describe()
        fields["action"] = self.action
        fields["target"] = self.target
        return fields


def plan(scenario: Scenario) -> list[Planned]:
    steps: list[Step] = list(scenario.steps)
    for s in scenario.steps:
        if s.lasts is not None:
            steps.append(_clearing(s))
    steps.sort(key=lambda s: s.at)  # stable: a clear at the same time follows its fault
    life = {n: "running" for n in scenario.nodes}
    net = NetState()
    out: list[Planned] = []
    for s in steps:
        if s.action in NODE_ACTIONS:
            out.append(_node_action(s, life))
        else:
            net = _apply(net, s, scenario.nodes)
            cleared = _is_clear(s)
            action = _CLEAR[s.action] if cleared and s.action != "heal" else s.action
            event = "fault_cleared" if cleared else "fault_injected"
            out.append(Planned(s.at, event, action, s.target, s, net))
    return out


def _clearing(s: Step) -> Step:
    at = s.at + (s.lasts or 0.0)
    if s.action == "pause":
        return Step(at=at, action="resume", target=s.target)
    if s.action == "partition":
        return Step(at=at, action="heal", target=s.target, groups=s.groups)
    return replace(s, at=at, percent=0.0, rate=None, delay_ms=0.0, jitter_ms=0.0, lasts=None)


def _is_clear(s: Step) -> bool:
    if s.action == "heal":
        return True
    if s.action == "loss":
        return s.percent == 0.0
    if s.action == "rate":
        return s.rate is None
    if s.action == "delay":
        return s.delay_ms == 0.0 and s.jitter_ms == 0.0
    return False


_ALLOWED = {
    "kill": ({"running", "paused"}, "killed"),
    "pause": ({"running"}, "paused"),
    "resume": ({"paused"}, "running"),
    "restart": ({"killed"}, "running"),
}


def _node_action(s: Step, life: dict[str, str]) -> Planned:
    targets = list(life) if s.target == "*" else [s.target]
    allowed, after = _ALLOWED[s.action]
    for node in targets:
        if life[node] not in allowed:
            raise ScenarioError(
                f"step at {s.at:g}s", f"cannot {s.action} {node}: it is {life[node]}"
            )
        life[node] = after
    event = "fault_cleared" if s.action in ("resume", "restart") else "fault_injected"
    return Planned(s.at, event, s.action, s.target, s)


def _apply(net: NetState, s: Step, nodes: tuple[str, ...]) -> NetState:
    if s.action == "loss":
        if s.link is not None:
            link_loss = dict(net.link_loss)
            key = (min(s.link), max(s.link))
            _set(link_loss, key, s.percent if s.percent > 0 else None)
            return replace(net, link_loss=link_loss)
        loss = dict(net.loss)
        _set(loss, s.target, s.percent if s.percent > 0 else None)
        return replace(net, loss=loss)
    if s.action == "partition":
        return replace(net, groups=s.groups)
    if s.action == "heal":
        return replace(net, groups=())
    if s.action == "rate":
        rate = dict(net.rate)
        for node in nodes if s.target == "*" else (s.target,):
            _set(rate, node, s.rate)
        return replace(net, rate=rate)
    delay = dict(net.delay)
    value = None if _is_clear(s) else (s.delay_ms, s.jitter_ms)
    for node in nodes if s.target == "*" else (s.target,):
        _set(delay, node, value)
    return replace(net, delay=delay)


def _set(table: dict[K, V], key: K, value: V | None) -> None:
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value


def receiver_loss(net: NetState, sender: str, receiver: str) -> float:
    """The percentage of packets from `sender` that `receiver` loses (0..100):
    independent drops at each applicable rule combine."""
    keep = 1.0
    for key in ("*", receiver):
        if key in net.loss:
            keep *= 1 - net.loss[key] / 100
    link = (min(sender, receiver), max(sender, receiver))
    if link in net.link_loss:
        keep *= 1 - net.link_loss[link] / 100
    return round((1 - keep) * 100, 4)


def partitioned(net: NetState, a: str, b: str) -> bool:
    side = {n: i for i, g in enumerate(net.groups) for n in g}
    return a in side and b in side and side[a] != side[b]
