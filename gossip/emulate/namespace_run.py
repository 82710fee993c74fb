"""A whole emulation on this machine: namespaces, agents, the scenario, and
cleanup whatever happens.

Rules: the topology, every agent and the scenario log are torn down in
`finally` blocks, and SIGTERM is turned into the same path as Ctrl-C, so an
interrupted or failed run leaves no namespace, link or process behind. The
scenario clock starts only when every agent has seen every other one (or the
scenario's `settle` time has passed, which is logged).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from gossip.emulate.agents import Agent, AgentSpec, stop_all
from gossip.emulate.netns import Topology
from gossip.emulate.plan import NetState, plan
from gossip.emulate.player import ScenarioLog, play
from gossip.emulate.scenario import Scenario
from gossip.logs.records import BadLine, parse_line

SEEDS = 2  # every agent joins through the first two nodes


@dataclass
class NamespaceBackend:
    topology: Topology
    agents: dict[str, Agent]

    def node_action(self, action: str, node: str) -> dict[str, object]:
        agent = self.agents[node]
        if action == "restart":
            return {"pid": agent.start()}
        pid = {"kill": agent.kill, "pause": agent.pause, "resume": agent.resume}[action]()
        return {"pid": pid}

    def apply_net(self, net: NetState) -> list[str]:
        return self.topology.apply(net)


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM and SIGINT both interrupt the run (and so clean up), once: later
    ones are ignored so the cleanup completes. SIGINT is set explicitly, as a
    process started in the background inherits it ignored."""

    fired = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        if fired:
            return  # the cleanup is under way: let it finish
        fired = True
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def seen_by_all(agents: Sequence[Agent]) -> bool:
    """Whether every agent's log shows a join of every other agent."""
    logs: dict[str, bytes] = {}
    for agent in agents:
        try:
            logs[agent.spec.node] = agent.spec.log_file.read_bytes()
        except FileNotFoundError:
            return False
    return everyone_joined(logs)


def everyone_joined(logs: Mapping[str, bytes]) -> bool:
    """Whether each node's log (JSON lines) shows a join of every other node."""
    for node, text in logs.items():
        joined: set[str] = set()
        for raw in text.splitlines():
            try:
                record = parse_line(raw)
            except BadLine:
                continue
            if record.event == "member_joined" and record.member:
                joined.add(record.member)
        if not set(logs) - {node} <= joined:
            return False
    return True


def run_emulation(
    scenario: Scenario,
    out_dir: Path,
    *,
    command: Sequence[str],
    echo: Callable[[str], None] = print,
    ipv6: bool = False,
) -> Path:
    """Play `scenario`; returns the scenario log's path. Logs go to `out_dir`."""
    planned = plan(scenario)  # a bad scenario fails before anything is created
    out_dir.mkdir(parents=True, exist_ok=True)
    log = ScenarioLog(out_dir / "scenario.log")
    agents: list[Agent] = []
    outcome = "interrupted"
    try:
        with _sigterm_interrupts(), Topology(scenario.nodes, ipv6=ipv6) as topo:
            seeds = [topo.hosts[n].ip for n in scenario.nodes[:SEEDS]]
            for node, host in topo.hosts.items():
                spec = AgentSpec(
                    node=node,
                    ip=host.ip,
                    seeds=[s for s in seeds if s != host.ip],
                    profile=scenario.profile,
                    out_dir=out_dir,
                    prefix=topo.exec_prefix(node),
                    command=command,
                )
                agents.append(Agent(spec))
            try:
                _start(agents, scenario, log, echo)
                backend = NamespaceBackend(topo, {a.spec.node: a for a in agents})
                play(
                    planned,
                    backend,
                    log,
                    scenario,
                    echo=echo,
                )
                outcome = "completed"
            finally:
                log.write("scenario_finished", outcome=outcome)
                stop_all(agents)
    finally:
        stop_all(agents, timeout=1.0)  # only reached with work left after an error
        log.close()
    echo(f"{outcome}: logs in {out_dir}")
    return log.path


def _start(
    agents: Sequence[Agent], scenario: Scenario, log: ScenarioLog, echo: Callable[[str], None]
) -> None:
    for agent in agents:
        pid = agent.start()
        log.write("agent_spawned", target=agent.spec.node, pid=pid, ip=agent.spec.ip)
    began = time.monotonic()
    while time.monotonic() - began < scenario.settle:
        if seen_by_all(agents):
            break
        dead = [a for a in agents if not a.running()]
        if dead:
            first = dead[0].spec
            tail = (first.out_dir / f"{first.node}.stderr").read_text(errors="replace")[-600:]
            names = [a.spec.node for a in dead]
            raise RuntimeError(
                f"agents exited during start-up: {names}; {first.node} said:\n{tail}"
            )
        time.sleep(0.2)
    formed = seen_by_all(agents)
    took = round(time.monotonic() - began, 3)
    log.write("cluster_formed", complete=formed, seconds=took)
    echo(f"cluster {'formed' if formed else 'NOT fully formed'} after {took:.1f}s")
