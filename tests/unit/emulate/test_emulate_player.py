"""The play loop: actions at their times through a backend, each logged with
the wall-clock time taken just before it was carried out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gossip.cli import main
from gossip.emulate.plan import NetState, plan
from gossip.emulate.player import ScenarioLog, play
from gossip.emulate.scenario import parse_scenario

SCENARIO = b"""
agents = 3
duration = 10
[[step]]
at = 2
action = "delay"
target = "n2"
delay_ms = 30
[[step]]
at = 4
action = "kill"
target = "n3"
"""


class FakeBackend:
    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.calls: list[tuple[float, str, str]] = []

    def node_action(self, action: str, node: str) -> dict[str, object]:
        self.calls.append((self.clock[0], action, node))
        return {"pid": 100 + int(node[1:])}

    def apply_net(self, net: NetState) -> list[str]:
        self.calls.append((self.clock[0], "net", repr(sorted(net.delay))))
        return ["no netem here"] if net.delay else []


def test_play_keeps_the_schedule_and_logs_skips(tmp_path: Path) -> None:
    scenario = parse_scenario(SCENARIO)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    backend = FakeBackend(now)
    log = ScenarioLog(tmp_path / "scenario.log", wall=lambda: 1000 + now[0])
    play(
        plan(scenario),
        backend,
        log,
        scenario,
        clock=lambda: now[0],
        wall=lambda: 1000 + now[0],
        sleep=sleep,
    )
    log.close()
    assert backend.calls == [
        (2.0, "net", "['n2']"),
        (4.0, "kill", "n3"),
    ]
    assert now[0] == 10.0  # it waited out the duration
    lines = [json.loads(ln) for ln in (tmp_path / "scenario.log").read_text().splitlines()]
    events = [ln["event"] for ln in lines]
    assert events == ["scenario_started", "action_skipped", "fault_injected", "fault_injected"]
    assert lines[1]["reason"] == "no netem here"
    assert lines[2]["timestamp"] == "1970-01-01T00:16:42.000000Z"  # 1000 s + 2 s after the epoch
    assert lines[3]["pid"] == 103 and lines[3]["target"] == "n3"


def test_emulate_plan_prints_and_checks(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_bytes(SCENARIO)
    assert main(["emulate", "plan", str(path), "--json"]) == 0
    steps = json.loads(capsys.readouterr().out)["steps"]
    assert [(s["at"], s["action"]) for s in steps] == [(2.0, "delay"), (4.0, "kill")]
    path.write_bytes(SCENARIO.replace(b'"kill"', b'"resume"'))
    assert main(["emulate", "run", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "cannot resume n3: it is running" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing was created for a bad scenario
