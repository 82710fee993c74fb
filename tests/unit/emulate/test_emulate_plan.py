"""Scenario files, their plan, and the rules rendered from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gossip.emulate.plan import NetState, partitioned, plan, receiver_loss
from gossip.emulate.rules import bridge_ruleset, input_ruleset, qdisc_commands
from gossip.emulate.scenario import ScenarioError, load_scenario, parse_scenario

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"


def node_step(at: float, action: str, target: str = "n1") -> str:
    return f'[[step]]\nat = {at}\naction = "{action}"\ntarget = "{target}"\n'


def toml(text: str) -> bytes:
    return ("agents = 3\nduration = 60\n" + text).encode()


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.*")), ids=lambda p: p.name)
def test_every_shipped_scenario_parses_and_plans(path: Path) -> None:
    scenario = load_scenario(path)
    planned = plan(scenario)
    assert planned
    assert [p.at for p in planned] == sorted(p.at for p in planned)


def test_the_ci_scenario_plans_loss_kill_pause_and_resume() -> None:
    scenario = load_scenario(SCENARIOS / "ci-loss-kill-pause.toml")
    assert scenario.nodes == ("n1", "n2", "n3", "n4", "n5")
    steps = [(p.at, p.event, p.action, p.target) for p in plan(scenario)]
    assert steps == [
        (1.0, "fault_injected", "loss", "*"),
        (5.0, "fault_injected", "kill", "n3"),
        (14.0, "fault_injected", "pause", "n4"),
        (22.0, "fault_cleared", "resume", "n4"),
    ]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('[[step]]\nat = 1\naction = "explode"\n', "step[0].action"),
        ('[[step]]\nat = 99\naction = "kill"\ntarget = "n1"\n', "step[0].at"),
        ('[[step]]\nat = 1\naction = "kill"\ntarget = "n9"\n', "step[0].target"),
        ('[[step]]\nat = 1\naction = "kill"\ntarget = "*"\n', "step[0].target"),
        ('[[step]]\nat = 1\naction = "loss"\npercent = 101\n', "step[0].percent"),
        ('[[step]]\nat = 1\naction = "loss"\npercent = 5\nlink = ["n1", "n1"]\n', "step[0].link"),
        (
            '[[step]]\nat = 1\naction = "partition"\ngroups = [["n1"], ["n1", "n2"]]\n',
            "step[0].groups",
        ),
        ('[[step]]\nat = 1\naction = "rate"\nrate = "fast"\n', "step[0].rate"),
        ('[[step]]\nat = 1\naction = "kill"\ntarget = "n1"\nfor = 3\n', "step[0].for"),
        ('[[step]]\nat = 50\naction = "pause"\ntarget = "n1"\nfor = 30\n', "step[0].for"),
        ('[[step]]\nat = 1\naction = "kill"\ntarget = "n1"\ncolour = 1\n', "step[0]"),
        ("bogus = 1\n", "scenario"),
    ],
)
def test_bad_scenarios_name_the_place(text: str, where: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(toml(text))
    assert info.value.where.endswith(where)


def test_bounds_on_the_whole_file() -> None:
    with pytest.raises(ScenarioError, match="agents"):
        parse_scenario(b"agents = 1000\nduration = 1\n")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        parse_scenario(b"agents = [")
    with pytest.raises(ScenarioError, match="not valid JSON"):
        parse_scenario(b"[" * 100_000, json_format=True)


def test_node_actions_must_fit_the_node_life() -> None:
    resume_running = parse_scenario(toml(node_step(1, "resume")))
    with pytest.raises(ScenarioError, match="cannot resume n1: it is running"):
        plan(resume_running)
    twice = toml(node_step(1, "kill") + node_step(2, "kill"))
    with pytest.raises(ScenarioError, match="killed"):
        plan(parse_scenario(twice))
    restart = toml(node_step(1, "kill") + node_step(2, "restart"))
    assert [p.event for p in plan(parse_scenario(restart))] == ["fault_injected", "fault_cleared"]


def test_network_state_accumulates_and_clears() -> None:
    text = toml(
        '[[step]]\nat = 1\naction = "loss"\npercent = 10\n'
        '[[step]]\nat = 2\naction = "loss"\ntarget = "n2"\npercent = 50\nfor = 5\n'
        '[[step]]\nat = 3\naction = "partition"\ngroups = [["n1"], ["n2", "n3"]]\n'
        '[[step]]\nat = 4\naction = "heal"\n'
    )
    states = [(p.action, p.event, p.net) for p in plan(parse_scenario(text))]
    net_after_partition = states[2][2]
    assert net_after_partition is not None
    assert partitioned(net_after_partition, "n1", "n3")
    assert not partitioned(net_after_partition, "n2", "n3")
    assert receiver_loss(net_after_partition, "n1", "n2") == 55.0  # 10% then 50% of the rest
    assert receiver_loss(net_after_partition, "n1", "n3") == 10.0
    assert states[3][:2] == ("heal", "fault_cleared")
    last = states[-1]
    assert last[:2] == ("loss", "fault_cleared") and last[2] == NetState(loss={"*": 10.0})


def test_rules_drop_on_the_receiver_side_only() -> None:
    net = NetState(loss={"n2": 10.0}, link_loss={("n1", "n3"): 25.5}, groups=())
    addresses = {"n1": "10.0.0.1", "n2": "10.0.0.2", "n3": "10.0.0.3"}
    bridge = bridge_ruleset(net, addresses)
    assert "ip saddr 10.0.0.1 ip daddr 10.0.0.2 numgen random mod 10000 < 1000 drop" in bridge
    assert "ip saddr 10.0.0.3 ip daddr 10.0.0.1 numgen random mod 10000 < 2550 drop" in bridge
    assert "ip daddr 10.0.0.3 numgen random mod 10000 < 1000" not in bridge
    own = input_ruleset(NetState(groups=(("n1",), ("n2", "n3"))), addresses, "n2")
    assert "hook input" in own
    assert "ip saddr 10.0.0.1 drop" in own and "10.0.0.3" not in own


def test_queueing_commands() -> None:
    assert qdisc_commands(NetState(), "n1", "eth0") == [
        ["tc", "qdisc", "del", "dev", "eth0", "root"]
    ]
    rate = qdisc_commands(NetState(rate={"n1": "1mbit"}), "n1", "eth0")
    assert rate[0][5:9] == ["root", "tbf", "rate", "1mbit"]
    both = qdisc_commands(NetState(rate={"n1": "1mbit"}, delay={"n1": (40.0, 5.0)}), "n1", "eth0")
    assert both[0][-4:] == ["netem", "delay", "40ms", "5ms"]
    assert both[1][5:9] == ["parent", "1:1", "handle", "10:"]
