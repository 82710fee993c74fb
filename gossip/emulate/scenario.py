"""Scenario files: a cluster size, a duration and a time-ordered list of fault
actions, read from TOML or JSON.

Rules: a scenario file is untrusted input. Its size, the number of agents and
steps, every name, time and number are bounded and checked before anything
runs; any problem is one ScenarioError naming where it is and why. Agents are
named n1..nK. Times are seconds from the moment the cluster has formed.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_FILE_BYTES = 256 * 1024
MAX_AGENTS = 32
MAX_STEPS = 500
MAX_DURATION = 3600.0
ACTIONS = frozenset(
    {"kill", "pause", "resume", "restart", "loss", "partition", "heal", "rate", "delay"}
)
NODE_ACTIONS = frozenset({"kill", "pause", "resume", "restart"})
_RATE = re.compile(r"^[1-9][0-9]{0,9}(bit|kbit|mbit|gbit)$")
_STEP_KEYS = frozenset(
    {"at", "action", "target", "link", "groups", "percent", "rate", "delay_ms", "jitter_ms", "for"}
)
_TOP_KEYS = frozenset({"name", "agents", "profile", "duration", "settle", "step", "steps"})


class ScenarioError(ValueError):
    def __init__(self, where: str, why: str) -> None:
        super().__init__(f"{where}: {why}")
        self.where = where
        self.why = why


@dataclass(frozen=True, slots=True)
class Step:
    """One action at `at` seconds. `target` is a node name or "*" (every node)."""

    at: float
    action: str
    target: str = "*"
    link: tuple[str, str] | None = None
    groups: tuple[tuple[str, ...], ...] = ()
    percent: float = 0.0
    rate: str | None = None
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    lasts: float | None = None  # the file's `for`: clear the fault this much later

    def describe(self) -> dict[str, object]:
        """The step's own fields for a scenario log line (no defaults)."""
        out: dict[str, object] = {"action": self.action, "target": self.target}
        if self.link:
            out["link"] = list(self.link)
        if self.groups:
            out["groups"] = [list(g) for g in self.groups]
        if self.action == "loss":
            out["percent"] = self.percent
        if self.action == "rate":
            out["rate"] = self.rate
        if self.action == "delay":
            out["delay_ms"] = self.delay_ms
            out["jitter_ms"] = self.jitter_ms
        return out


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    agents: int
    profile: str
    duration: float
    settle: float
    steps: tuple[Step, ...] = field(default=())

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(f"n{i}" for i in range(1, self.agents + 1))


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    data = path.read_bytes()[: MAX_FILE_BYTES + 1]
    if len(data) > MAX_FILE_BYTES:
        raise ScenarioError(str(path), f"larger than {MAX_FILE_BYTES} bytes")
    return parse_scenario(data, json_format=path.suffix == ".json", where=str(path))


def parse_scenario(data: bytes, *, json_format: bool = False, where: str = "scenario") -> Scenario:
    try:
        text = data.decode("utf-8")
        raw: Any = json.loads(text) if json_format else tomllib.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ScenarioError(
            where, f"not valid {'JSON' if json_format else 'TOML'}: {exc}"
        ) from None
    if not isinstance(raw, dict):
        raise ScenarioError(where, "must be a table/object")
    return _scenario(raw, where)


def _scenario(raw: Mapping[str, Any], where: str) -> Scenario:
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise ScenarioError(where, f"unknown keys {sorted(unknown)}")
    name = raw.get("name", "scenario")
    if not isinstance(name, str) or not 0 < len(name) <= 64:
        raise ScenarioError(f"{where}.name", "must be a string of 1..64 characters")
    agents = raw.get("agents")
    if not isinstance(agents, int) or isinstance(agents, bool) or not 1 <= agents <= MAX_AGENTS:
        raise ScenarioError(f"{where}.agents", f"must be an integer in 1..{MAX_AGENTS}")
    profile = raw.get("profile", "local")
    if profile not in ("local", "lan", "wan"):
        raise ScenarioError(f"{where}.profile", "must be local, lan or wan")
    duration = _number(raw.get("duration"), f"{where}.duration", 0.0, MAX_DURATION)
    settle = _number(raw.get("settle", 10.0), f"{where}.settle", 0.0, 600.0)
    steps_raw = raw.get("step", raw.get("steps", []))
    if not isinstance(steps_raw, list) or len(steps_raw) > MAX_STEPS:
        raise ScenarioError(f"{where}.step", f"must be a list of at most {MAX_STEPS} steps")
    nodes = {f"n{i}" for i in range(1, agents + 1)}
    steps = [_step(s, f"{where}.step[{i}]", nodes, duration) for i, s in enumerate(steps_raw)]
    # Stable: steps at the same time keep the file's order.
    steps.sort(key=lambda s: s.at)
    return Scenario(name, agents, str(profile), duration, settle, tuple(steps))


def _number(value: Any, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ScenarioError(where, "must be a number")
    if not low <= value <= high:
        raise ScenarioError(where, f"must be within {low:g}..{high:g}")
    return float(value)


def _node(value: Any, where: str, nodes: set[str], allow_all: bool) -> str:
    if value == "*" and allow_all:
        return "*"
    if not isinstance(value, str) or value not in nodes:
        raise ScenarioError(
            where, f"must be one of n1..n{len(nodes)}" + (" or *" if allow_all else "")
        )
    return value


def _step(raw: Any, where: str, nodes: set[str], duration: float) -> Step:
    if not isinstance(raw, dict):
        raise ScenarioError(where, "must be a table/object")
    unknown = set(raw) - _STEP_KEYS
    if unknown:
        raise ScenarioError(where, f"unknown keys {sorted(unknown)}")
    action = raw.get("action")
    if action not in ACTIONS:
        raise ScenarioError(f"{where}.action", f"must be one of {sorted(ACTIONS)}")
    at = _number(raw.get("at"), f"{where}.at", 0.0, duration)
    lasts = None
    if "for" in raw:
        if action not in ("pause", "loss", "partition", "rate", "delay"):
            raise ScenarioError(f"{where}.for", f"not allowed on {action}")
        lasts = _number(raw["for"], f"{where}.for", 0.0, duration - at)
    kw: dict[str, Any] = {"at": at, "action": action, "lasts": lasts}
    target_all = action in ("loss", "rate", "delay")
    if action in NODE_ACTIONS or (target_all and "link" not in raw):
        kw["target"] = _node(
            raw.get("target", "*" if target_all else None), f"{where}.target", nodes, target_all
        )
    if "link" in raw:
        link = raw["link"]
        if action != "loss" or not isinstance(link, list) or len(link) != 2:
            raise ScenarioError(f"{where}.link", "a loss step's [node, node] pair")
        a, b = (_node(n, f"{where}.link", nodes, False) for n in link)
        if a == b:
            raise ScenarioError(f"{where}.link", "needs two different nodes")
        kw["link"] = (a, b)
        kw["target"] = f"{a}<->{b}"
    if action == "partition":
        kw["groups"] = _groups(raw.get("groups"), f"{where}.groups", nodes)
        kw["target"] = "|".join(",".join(g) for g in kw["groups"])
    if action == "loss":
        kw["percent"] = _number(raw.get("percent"), f"{where}.percent", 0.0, 100.0)
    if action == "rate":
        rate = raw.get("rate")
        if rate not in (None, "off") and not (isinstance(rate, str) and _RATE.match(rate)):
            raise ScenarioError(f"{where}.rate", 'like "256kbit" or "10mbit", or "off"')
        kw["rate"] = None if rate in (None, "off") else rate
    if action == "delay":
        kw["delay_ms"] = _number(raw.get("delay_ms"), f"{where}.delay_ms", 0.0, 10_000.0)
        kw["jitter_ms"] = _number(raw.get("jitter_ms", 0.0), f"{where}.jitter_ms", 0.0, 10_000.0)
    return Step(**kw)


def _groups(value: Any, where: str, nodes: set[str]) -> tuple[tuple[str, ...], ...]:
    if not isinstance(value, list) or len(value) < 2:
        raise ScenarioError(where, "a list of at least two groups of nodes")
    groups = []
    seen: set[str] = set()
    for group in value:
        if not isinstance(group, list) or not group:
            raise ScenarioError(where, "each group is a non-empty list of nodes")
        names = tuple(_node(n, where, nodes, False) for n in group)
        if seen & set(names) or len(set(names)) != len(names):
            raise ScenarioError(where, "a node may be in one group only")
        seen |= set(names)
        groups.append(names)
    return tuple(groups)
