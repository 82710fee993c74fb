"""Playing a plan: carry out each planned action at its time through a
backend, and write the scenario log.

Rules: one loop for every backend (namespaces, containers), so timing and
logging are the same wherever a scenario runs. Each scenario log line is
stamped with the wall-clock time taken just before the action is carried out:
that is the time the log tool measures detection latency from. A backend note
(for example a qdisc this kernel lacks) becomes an `action_skipped` line, never
a silent no-op.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, TextIO

from gossip.emulate.plan import NetState, Planned
from gossip.emulate.scenario import Scenario
from gossip.logs.records import format_timestamp


class Backend(Protocol):
    def node_action(self, action: str, node: str) -> dict[str, object]:
        """kill | pause | resume | restart one node; returns fields to log (pid)."""
        ...

    def apply_net(self, net: NetState) -> list[str]:
        """Make a whole network state true; returns notes on what was skipped."""
        ...


class ScenarioLog:
    """JSON lines: timestamp (ISO-8601 UTC), event, then the action's fields."""

    def __init__(self, path: Path, wall: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._wall = wall
        self._stream: TextIO = path.open("a", encoding="utf-8", buffering=1)

    def write(self, event: str, stamp: float | None = None, **fields: object) -> None:
        when = self._wall() if stamp is None else stamp
        line = {"timestamp": format_timestamp(when), "level": "info", "event": event, **fields}
        self._stream.write(json.dumps(line, default=str) + "\n")

    def close(self) -> None:
        self._stream.close()


def play(
    planned: Sequence[Planned],
    backend: Backend,
    log: ScenarioLog,
    scenario: Scenario,
    *,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    echo: Callable[[str], None] = lambda _: None,
) -> None:
    """Run the plan from now (t = 0) until the scenario's duration has passed."""
    duration, nodes = scenario.duration, scenario.nodes
    start = clock()
    log.write("scenario_started", wall(), duration=duration, steps=len(planned))
    for step in planned:
        delay = start + step.at - clock()
        if delay > 0:
            sleep(delay)
        stamp = wall()
        fields = step.log_fields()
        if step.net is None:
            targets = list(nodes) if step.target == "*" else [step.target]
            for node in targets:
                fields.update(backend.node_action(step.action, node))
        else:
            for note in backend.apply_net(step.net):
                log.write(
                    "action_skipped", wall(), action=step.action, target=step.target, reason=note
                )
                echo(f"note: {note}")
        log.write(step.event, stamp, at=step.at, **{k: v for k, v in fields.items() if k != "at"})
        echo(f"{clock() - start:7.2f}s {step.event:<15} {step.action} {step.target}")
    remaining = start + duration - clock()
    if remaining > 0:
        sleep(remaining)
