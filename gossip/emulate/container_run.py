"""Whole scenario runs against a compose cluster, or dry runs that only list
the docker commands (what tools/container-scenario offers).

Rules: a dry run uses a simulated clock, so it finishes at once and writes the
same scenario log a real run would; a real run waits for the cluster to form,
plays the plan, and always leaves the cluster with every network fault cleared,
paused agents resumed and each container's log saved next to the scenario log.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

from gossip.emulate.containers import ContainerBackend, Recorder, compose_containers
from gossip.emulate.namespace_run import everyone_joined
from gossip.emulate.plan import NetState, plan
from gossip.emulate.player import ScenarioLog, play
from gossip.emulate.scenario import Scenario


def dry_run(
    scenario: Scenario, out: Path, echo: Callable[[str], None] = print, *, family: int = 4
) -> list[str]:
    """Play with a recording runner and a simulated clock; return the commands."""
    planned = plan(scenario)
    names = {n: f"gossip-{n}-1" for n in scenario.nodes}
    first = "10.99.0." if family == 4 else "fd00:99::"
    recorder = Recorder({c: f"{first}{10 + i}" for i, c in enumerate(names.values(), start=1)})
    backend = ContainerBackend.discover(names, recorder, family=family)
    now = [0.0]
    started = time.time()

    def advance(seconds: float) -> None:
        now[0] += seconds

    log = ScenarioLog(out / "scenario.log", wall=lambda: started + now[0])
    try:
        play(
            planned,
            backend,
            log,
            scenario,
            clock=lambda: now[0],
            wall=lambda: started + now[0],
            sleep=advance,
            echo=echo,
        )
        log.write("scenario_finished", outcome="dry-run")
    finally:
        log.close()
    return [
        " ".join(argv) + (f" <<EOF\n{stdin}EOF" if stdin else "") for argv, stdin in recorder.calls
    ]


def compose_run(
    scenario: Scenario,
    out: Path,
    project_dir: str,
    echo: Callable[[str], None] = print,
    *,
    family: int = 4,
) -> str:
    """Play against the running compose cluster; returns the outcome."""
    planned = plan(scenario)
    containers = compose_containers(scenario.nodes, project_dir)
    backend = ContainerBackend.discover(containers, family=family)
    began = time.monotonic()
    while time.monotonic() - began < scenario.settle:
        if everyone_joined(backend.collect_logs()):
            break
        time.sleep(1.0)
    log = ScenarioLog(out / "scenario.log")
    outcome = "interrupted"
    try:
        play(planned, backend, log, scenario, echo=echo)
        outcome = "completed"
    finally:
        log.write("scenario_finished", outcome=outcome)
        backend.apply_net(NetState())
        for node in scenario.nodes:
            with contextlib.suppress(RuntimeError):  # only paused ones can be resumed
                backend.node_action("resume", node)
        for node, text in backend.collect_logs().items():
            (out / f"{node}.log").write_bytes(text)
        log.close()
    return outcome
