"""Fault schedules: the steps of a run, drawn from a seed or read from a file.

Rules: a step is one fault with a start (`at`) and a length (`for`), cleared when
it ends (a killed node restarts, a partition heals, a disk frees); a clock step
is permanent. Field names follow the emulator's scenario files where they mean
the same thing (at, action, target, groups, link, percent, delay_ms, jitter_ms,
for). Every fault ends by the run's duration. A schedule file is untrusted
input: bounded in size and steps, known fields only, every node and number
checked; errors are ScheduleError naming the step. The file carries the seed
and the config, so replaying it repeats the run exactly.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gossip.testing.torture.config import FAULT_KINDS, TortureConfig

FORMAT = "gossip-torture/1"
MAX_FILE_BYTES = 1 << 20
MAX_STEPS = 2000
NODE_KINDS = frozenset(
    {"kill", "stop", "wipe", "isolate", "pause", "clock", "disk_full", "disk_error", "disk_slow"}
)
NET_KINDS = frozenset({"loss", "duplicate", "reorder", "delay"})
_STEP_KEYS = frozenset(
    {"at", "action", "target", "groups", "link", "percent", "delay_ms", "jitter_ms", "step_ms"}
    | {"where", "for"}
)


class ScheduleError(ValueError):
    pass


@dataclass(frozen=True)
class Step:
    at: float
    action: str
    lasts: float = 0.0
    target: str = "*"
    groups: tuple[tuple[str, ...], ...] = ()
    link: tuple[str, str] | None = None
    percent: float = 0.0
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    step_ms: int = 0
    where: str = "commit"

    @property
    def ends(self) -> float:
        return self.at + self.lasts

    def nodes(self, names: Sequence[str]) -> set[str]:
        """The nodes this fault touches directly (all of `names` for network-wide ones)."""
        if self.action in NODE_KINDS:
            return {self.target}
        if self.action == "partition":
            return {n for g in self.groups for n in g}
        if self.action == "oneway" and self.link is not None:
            return set(self.link)
        return set(names)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"at": self.at, "action": self.action, "for": self.lasts}
        if self.action in NODE_KINDS:
            out["target"] = self.target
        if self.groups:
            out["groups"] = [list(g) for g in self.groups]
        if self.link is not None:
            out["link"] = list(self.link)
        if self.action in ("loss", "duplicate", "reorder"):
            out["percent"] = self.percent
        if self.action in ("delay", "disk_slow"):
            out["delay_ms"] = self.delay_ms
        if self.action == "delay":
            out["jitter_ms"] = self.jitter_ms
        if self.action == "clock":
            out["step_ms"] = self.step_ms
            del out["for"]
        if self.action in ("disk_full", "disk_error"):
            out["where"] = self.where
        return out


@dataclass(frozen=True)
class Schedule:
    seed: int
    config: TortureConfig
    steps: tuple[Step, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "seed": self.seed,
            "config": self.config.to_json(),
            "steps": [s.to_json() for s in self.steps],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n"

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.dumps())

    def without(self, index: int) -> Schedule:
        return Schedule(self.seed, self.config, self.steps[:index] + self.steps[index + 1 :])


# ---- drawing from the seed -----------------------------------------------------------


def generate(seed: int, config: TortureConfig) -> Schedule:
    """Faults at random moments (on average one per `fault_every`), each of a kind
    from `config.faults`, all over by the end of the run."""
    rng = random.Random(f"schedule/{seed}")
    names = config.names
    steps: list[Step] = []
    if not config.faults or config.fault_every <= 0:
        return Schedule(seed, config, ())
    t = rng.expovariate(1 / config.fault_every)
    while t < config.duration * 0.9 and len(steps) < MAX_STEPS:
        kind = rng.choice(config.faults)
        step = _draw(rng, kind, t, config, names)
        if step is not None:
            steps.append(step)
        t += rng.expovariate(1 / config.fault_every)
    return Schedule(seed, config, tuple(steps))


def _draw(
    rng: random.Random, kind: str, at: float, config: TortureConfig, names: Sequence[str]
) -> Step | None:
    at = round(at, 3)
    left = config.duration - at
    target = rng.choice(names)

    def lasting(low: float, high: float) -> float:
        # Whole milliseconds, rounded down, so that the fault ends by the end of the run.
        return math.floor(min(left, rng.uniform(low, high)) * 1000) / 1000

    if kind in ("kill", "stop", "wipe"):
        return Step(at, kind, lasting(1.0, 20.0), target=target)
    if kind == "partition":
        if len(names) < 2:
            return None
        shuffled = list(names)
        rng.shuffle(shuffled)
        cut = rng.randint(1, len(names) // 2)
        groups = (tuple(sorted(shuffled[:cut])), tuple(sorted(shuffled[cut:])))
        return Step(at, kind, lasting(2.0, 30.0), groups=groups)
    if kind == "oneway":
        if len(names) < 2:
            return None
        a, b = rng.sample(list(names), 2)
        return Step(at, kind, lasting(2.0, 30.0), link=(a, b))
    if kind == "isolate":
        # Longer than the reap time, so that both sides forget each other.
        low = config.reap * 1.2 + 10
        return Step(at, kind, lasting(low, low * 1.5), target=target)
    if kind in ("loss", "duplicate", "reorder"):
        return Step(at, kind, lasting(2.0, 30.0), percent=round(rng.uniform(5.0, 40.0), 1))
    if kind == "delay":
        delay, jitter = round(rng.uniform(5, 200), 1), round(rng.uniform(0, 100), 1)
        return Step(at, kind, lasting(2.0, 30.0), delay_ms=delay, jitter_ms=jitter)
    if kind == "pause":
        return Step(at, kind, lasting(0.5, 15.0), target=target)
    if kind == "clock":
        size = rng.choice((1_000, 60_000, config.max_clock_step_ms))
        return Step(at, kind, target=target, step_ms=rng.randint(-size, size))
    if kind == "outage":
        # Every node down at once, longer than the tombstone horizon.
        low = config.horizon * 1.2 + 5
        return Step(at, kind, lasting(low, low * 1.5))
    if kind in ("disk_full", "disk_error"):
        where = rng.choice(("write", "commit"))
        return Step(at, kind, lasting(1.0, 20.0), target=target, where=where)
    if kind == "disk_slow":
        return Step(at, kind, lasting(1.0, 20.0), target=target, delay_ms=rng.uniform(1, 50))
    raise ValueError(f"unknown fault kind {kind!r}")


# ---- files -----------------------------------------------------------------------------


def load(path: str | Path) -> Schedule:
    path = Path(path)
    with path.open("rb") as fh:
        data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ScheduleError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    return parse(data, where=str(path))


def parse(data: bytes, where: str = "schedule") -> Schedule:
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ScheduleError(f"{where}: not valid JSON: {exc}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ScheduleError(f"{where}: not a {FORMAT} file")
    seed = raw.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 1 << 63:
        raise ScheduleError(f"{where}.seed: must be a non-negative integer")
    try:
        config = TortureConfig.from_json(raw.get("config", {}))
    except ValueError as exc:
        raise ScheduleError(f"{where}: {exc}") from None
    steps_raw = raw.get("steps", [])
    if not isinstance(steps_raw, list) or len(steps_raw) > MAX_STEPS:
        raise ScheduleError(f"{where}.steps: a list of at most {MAX_STEPS} steps")
    steps = [_step(s, f"{where}.steps[{i}]", config) for i, s in enumerate(steps_raw)]
    return Schedule(seed, config, tuple(sorted(steps, key=lambda s: s.at)))


def _number(raw: Mapping[str, Any], key: str, where: str, low: float, high: float) -> float:
    value = raw.get(key, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ScheduleError(f"{where}.{key}: must be a number")
    if not low <= value <= high:
        raise ScheduleError(f"{where}.{key}: must be within {low:g}..{high:g}")
    return float(value)


def _node(value: Any, where: str, names: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in names:
        raise ScheduleError(f"{where}: must be one of {', '.join(names)}")
    return value


def _step(raw: Any, where: str, config: TortureConfig) -> Step:
    if not isinstance(raw, dict):
        raise ScheduleError(f"{where}: must be an object")
    unknown = set(raw) - _STEP_KEYS
    if unknown:
        raise ScheduleError(f"{where}: unknown keys {sorted(unknown)}")
    action = raw.get("action")
    if action not in FAULT_KINDS:
        raise ScheduleError(f"{where}.action: must be one of {', '.join(FAULT_KINDS)}")
    names = config.names
    at = _number(raw, "at", where, 0.0, config.duration)
    kw: dict[str, Any] = {"at": at, "action": action}
    kw["lasts"] = _number(raw, "for", where, 0.0, config.duration - at)
    if action in NODE_KINDS:
        kw["target"] = _node(raw.get("target"), f"{where}.target", names)
    if action == "partition":
        groups = raw.get("groups")
        if not isinstance(groups, list) or len(groups) < 2:
            raise ScheduleError(f"{where}.groups: a list of at least two groups")
        parsed = [
            tuple(_node(n, f"{where}.groups", names) for n in g) if isinstance(g, list) else ()
            for g in groups
        ]
        flat = [n for g in parsed for n in g]
        if any(not g for g in parsed) or len(flat) != len(set(flat)):
            raise ScheduleError(f"{where}.groups: non-empty groups, each node in one only")
        kw["groups"] = tuple(parsed)
    if action == "oneway":
        link = raw.get("link")
        if not isinstance(link, list) or len(link) != 2:
            raise ScheduleError(f"{where}.link: a [from, to] pair")
        a, b = (_node(n, f"{where}.link", names) for n in link)
        if a == b:
            raise ScheduleError(f"{where}.link: two different nodes")
        kw["link"] = (a, b)
    if action in ("loss", "duplicate", "reorder"):
        kw["percent"] = _number(raw, "percent", where, 0.0, 100.0)
    if action in ("delay", "disk_slow"):
        kw["delay_ms"] = _number(raw, "delay_ms", where, 0.0, 10_000.0)
    if action == "delay":
        kw["jitter_ms"] = _number(raw, "jitter_ms", where, 0.0, 10_000.0)
    if action == "clock":
        limit = 366 * 86_400_000.0
        kw["step_ms"] = int(_number(raw, "step_ms", where, -limit, limit))
    if action in ("disk_full", "disk_error"):
        where_at = raw.get("where", "commit")
        if where_at not in ("write", "commit"):
            raise ScheduleError(f"{where}.where: write or commit")
        kw["where"] = where_at
    return Step(**kw)
