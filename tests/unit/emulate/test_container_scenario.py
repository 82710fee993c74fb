"""The container player: the same plan, carried out with docker commands; a
dry run with a simulated clock writes the scenario log a real run would."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from gossip.emulate.container_run import dry_run
from gossip.emulate.containers import ContainerBackend, Recorder
from gossip.emulate.plan import NetState
from gossip.emulate.scenario import load_scenario
from gossip.logs.records import load
from gossip.logs.views import faults_from

ROOT = Path(__file__).resolve().parents[3]


def test_dry_run_plays_the_ci_scenario_as_docker_commands(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "scenarios" / "ci-loss-kill-pause.toml")
    commands = dry_run(scenario, tmp_path, echo=lambda _: None)
    assert "docker kill --signal KILL gossip-n3-1" in commands
    assert "docker pause gossip-n4-1" in commands
    assert commands.index("docker pause gossip-n4-1") < commands.index("docker unpause gossip-n4-1")
    nft = [
        c for c in commands if "nft -f -" in c and c.startswith("docker exec -i -u 0 gossip-n2-1")
    ]
    assert nft and "ip saddr 10.99.0.11 numgen random mod 10000 < 1000 drop" in nft[0]
    assert "10.99.0.12" not in nft[0]  # no rule against its own address
    # The scenario log it wrote reads back as the scenario's own times.
    logs = load([tmp_path / "scenario.log"])
    faults = faults_from(logs.records)
    start = next(r.time for r in logs.records if r.event == "scenario_started")
    got = [(f.action, f.target, round(f.start - start, 3)) for f in faults]
    assert got == [("loss", "*", 1.0), ("kill", "n3", 5.0), ("pause", "n4", 14.0)]
    assert faults[2].end is not None and round(faults[2].end - start, 3) == 22.0


def test_on_ipv6_the_rules_match_the_containers_ipv6_addresses(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "scenarios" / "ci-loss-kill-pause.toml")
    commands = dry_run(scenario, tmp_path, echo=lambda _: None, family=6)
    assert any("GlobalIPv6Address" in c for c in commands if c.startswith("docker inspect"))
    nft = [
        c for c in commands if "nft -f -" in c and c.startswith("docker exec -i -u 0 gossip-n2-1")
    ]
    assert nft and "ip6 saddr fd00:99::11 " in nft[0]
    assert "ip saddr" not in nft[0]


def test_the_ipv6_compose_file_gives_every_agent_a_fixed_ipv6_address_it_advertises() -> None:
    base = yaml.safe_load((ROOT / "compose.yaml").read_text())
    over = yaml.safe_load((ROOT / "compose.ipv6.yaml").read_text())
    assert over["networks"]["gossip"]["enable_ipv6"] is True
    assert set(over["services"]) == set(base["services"])
    for name, service in over["services"].items():
        address = service["networks"]["gossip"]["ipv6_address"]
        env = service["environment"]
        assert env["GOSSIP_ADVERTISE"] == f"[{address}]:7946" and env["GOSSIP_NAME"] == name
        assert env["GOSSIP_BIND"] == "[::]:7946"


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = str(ROOT / "tools" / "container-scenario")
    return subprocess.run([sys.executable, tool, *args], capture_output=True, text=True, timeout=60)


def test_the_tool_runs_a_dry_run_from_the_command_line(tmp_path: Path) -> None:
    proc = run_tool(
        str(ROOT / "scenarios" / "partition-heal.toml"), "--out", str(tmp_path), "--dry-run"
    )
    assert proc.returncode == 0, proc.stderr
    assert "$ docker start gossip-n6-1" in proc.stdout
    assert "tbf rate 256kbit" in proc.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text("agents = 0\nduration = 1\n")
    proc = run_tool(str(bad), "--out", str(tmp_path), "--dry-run")
    assert proc.returncode == 2 and "agents" in proc.stderr


class FlakyRunner(Recorder):
    """Fails every docker exec into one container, as for a killed one."""

    down: str = "c2"

    def __call__(self, argv: Sequence[str], stdin: str | None) -> str:
        if argv[:2] == ["docker", "exec"] and self.down in argv:
            self.calls.append((list(argv), stdin))
            raise RuntimeError("container is not running")
        return super().__call__(argv, stdin)


def test_a_stopped_container_gets_its_rules_when_it_comes_back() -> None:
    runner = FlakyRunner()
    backend = ContainerBackend(
        {"n1": "c1", "n2": "c2"}, {"n1": "10.0.0.1", "n2": "10.0.0.2"}, run=runner
    )
    notes = backend.apply_net(NetState(loss={"*": 20.0}))
    assert len(notes) == 1 and notes[0].startswith("n2: rules not applied")
    runner.down = "nobody"
    runner.calls.clear()
    assert backend.node_action("restart", "n2") == {"container": "c2"}
    argv, stdin = runner.calls[1]
    assert argv[-3:] == ["nft", "-f", "-"] and "c2" in argv
    assert stdin is not None and "ip saddr 10.0.0.1 numgen random mod 10000 < 2000 drop" in stdin


@pytest.mark.parametrize("action", ["kill", "pause", "resume", "restart"])
def test_node_actions_map_to_docker(action: str) -> None:
    runner = Recorder()
    ContainerBackend({"n1": "c1"}, {"n1": "10.0.0.1"}, run=runner).node_action(action, "n1")
    assert runner.calls[0][0][:2] == [
        "docker",
        {"kill": "kill", "pause": "pause", "resume": "unpause", "restart": "start"}[action],
    ]
