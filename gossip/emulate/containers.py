"""Playing a scenario against a compose cluster: the same plan and rules as
the namespace emulator, carried out with `docker` inside the containers.

Rules: loss and partitions go into each receiver's own nftables input chain;
rate limits, delay and jitter go on the container's egress qdisc (tbf, netem);
kill is SIGKILL, pause/resume the cgroup freezer, restart `docker start`. The
docker command runner is injected, so the whole player runs in a test with a
recording runner, and `--dry-run` prints what it would do.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from gossip.emulate.plan import NetState
from gossip.emulate.rules import input_ruleset, qdisc_commands

Runner = Callable[[Sequence[str], str | None], str]


def docker_runner(argv: Sequence[str], stdin: str | None) -> str:
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc.stdout


@dataclass
class Recorder:
    """A runner that records each command (and answers inspect queries)."""

    addresses: Mapping[str, str] = field(default_factory=dict)
    calls: list[tuple[list[str], str | None]] = field(default_factory=list)

    def __call__(self, argv: Sequence[str], stdin: str | None) -> str:
        self.calls.append((list(argv), stdin))
        if argv[:2] == ["docker", "inspect"]:
            return self.addresses.get(argv[-1], "10.99.0.1") + "\n"
        return ""


@dataclass
class ContainerBackend:
    containers: Mapping[str, str]  # node -> container name or id
    addresses: Mapping[str, str]  # node -> IPv4 address on the cluster network
    run: Runner = docker_runner
    device: str = "eth0"
    notes_seen: set[str] = field(default_factory=set)
    net: NetState = field(default_factory=NetState)

    @classmethod
    def discover(
        cls, containers: Mapping[str, str], run: Runner = docker_runner, *, family: int = 4
    ) -> ContainerBackend:
        """Each container's address on its network: IPv4, or with family=6 its global
        IPv6 address (compose.ipv6.yaml), which the nftables rules then match."""
        if family not in (4, 6):
            raise ValueError("family is 4 or 6")
        field_name = "IPAddress" if family == 4 else "GlobalIPv6Address"
        template = f"{{{{range .NetworkSettings.Networks}}}}{{{{.{field_name}}}}} {{{{end}}}}"
        addresses = {}
        for node, container in containers.items():
            out = run(["docker", "inspect", "-f", template, container], None).split()
            if not out:
                what = "IP address" if family == 4 else "global IPv6 address"
                raise RuntimeError(f"{container}: no {what} (is it running, on that network?)")
            addresses[node] = out[0]
        return cls(containers=containers, addresses=addresses, run=run)

    def _exec(self, node: str, argv: Sequence[str], stdin: str | None = None) -> str:
        # -u 0: the agent runs unprivileged; traffic shaping needs root + NET_ADMIN.
        flags = ["-i"] if stdin is not None else []
        return self.run(["docker", "exec", *flags, "-u", "0", self.containers[node], *argv], stdin)

    def node_action(self, action: str, node: str) -> dict[str, object]:
        container = self.containers[node]
        argv = {
            "kill": ["docker", "kill", "--signal", "KILL", container],
            "pause": ["docker", "pause", container],
            "resume": ["docker", "unpause", container],
            "restart": ["docker", "start", container],
        }[action]
        self.run(argv, None)
        if action in ("resume", "restart"):
            # A stopped or frozen container missed rule changes: catch it up.
            self.notes_seen.update(self._apply_node(node))
        return {"container": container}

    def apply_net(self, net: NetState) -> list[str]:
        self.net = net
        notes: list[str] = []
        for node in self.containers:
            notes += self._apply_node(node)
        return notes

    def _apply_node(self, node: str) -> list[str]:
        try:
            self._exec(node, ["nft", "-f", "-"], input_ruleset(self.net, self.addresses, node))
        except RuntimeError as exc:
            return [f"{node}: rules not applied now ({exc}); applied again when it resumes"]
        notes = []
        for argv in qdisc_commands(self.net, node, self.device):
            try:
                self._exec(node, argv)
            except RuntimeError as exc:
                if argv[2] != "del":  # deleting an absent qdisc is fine
                    notes.append(f"{node}: {' '.join(argv[1:])} failed: {exc}")
        return notes

    def collect_logs(self) -> dict[str, bytes]:
        """Each container's output; the agent logs its JSON lines on stderr."""
        return {
            node: self.run(
                ["sh", "-c", f"docker logs {shlex.quote(container)} 2>&1"], None
            ).encode()
            for node, container in self.containers.items()
        }


def compose_containers(
    nodes: Sequence[str], project_dir: str, run: Runner = docker_runner
) -> dict[str, str]:
    """Container ids of compose services named like the scenario's nodes."""
    found = {}
    for node in nodes:
        out = run(["docker", "compose", "--project-directory", project_dir, "ps", "-q", node], None)
        if not out.strip():
            raise RuntimeError(f"no running compose service {node!r}: start the cluster first")
        found[node] = out.split()[0]
    return found
