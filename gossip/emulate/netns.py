"""Network namespaces on this machine: one per agent plus a hub namespace that
holds the bridge, joined by veth pairs.

Rules: nothing is created in the caller's own namespace — each veth pair is
made inside its agent's namespace with the peer moved straight into the hub —
so the host's interfaces and routes are never touched and emulated traffic
cannot leave. Every name carries the creating process's pid, so concurrent
runs do not collide and leftovers of a dead run can be found and removed.
Teardown never raises: it deletes whatever it can and reports the rest.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gossip.emulate.plan import NetState
from gossip.emulate.rules import bridge_ruleset, qdisc_commands

PREFIX = "gsp"
SUBNET = "10.213.0"  # addresses exist only inside namespaces this module creates
SUBNET6 = "fd00:213::"  # the same, for IPv6 runs (a unique local prefix)
_OWNED = re.compile(rf"^{PREFIX}(\d+)-")


class NetnsError(RuntimeError):
    pass


def run(argv: Sequence[str], *, stdin: str | None = None, check: bool = True) -> str:
    """Run a command; on failure raise NetnsError with its stderr."""
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


@dataclass(frozen=True, slots=True)
class Host:
    node: str
    netns: str
    ip: str
    hub_device: str  # the bridge port toward this host: its input queue lives here


class Topology:
    """K hosts on one bridge. Use as a context manager: teardown always runs."""

    def __init__(
        self, nodes: Sequence[str], *, owner: int | None = None, ipv6: bool = False
    ) -> None:
        owner = os.getpid() if owner is None else owner
        self.hub = f"{PREFIX}{owner}-hub"
        self.ipv6 = ipv6
        self.hosts = {
            node: Host(node, f"{PREFIX}{owner}-{node}", _address(i, ipv6), f"p{i}")
            for i, node in enumerate(nodes, start=1)
        }
        self._created: list[str] = []
        self.netem_available: bool | None = None

    @property
    def addresses(self) -> Mapping[str, str]:
        return {node: host.ip for node, host in self.hosts.items()}

    def __enter__(self) -> Topology:
        try:
            self.create()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def _add_netns(self, name: str) -> None:
        run(["ip", "netns", "add", name])
        self._created.append(name)
        run(["ip", "-n", name, "link", "set", "lo", "up"])

    def create(self) -> None:
        self._add_netns(self.hub)
        hub = ["ip", "-n", self.hub]
        run([*hub, "link", "add", "br0", "type", "bridge"])
        run([*hub, "link", "set", "br0", "up"])
        for host in self.hosts.values():
            self._add_netns(host.netns)
            here = ["ip", "-n", host.netns]
            run(
                [
                    *here,
                    "link",
                    "add",
                    "eth0",
                    "type",
                    "veth",
                    "peer",
                    "name",
                    host.hub_device,
                    "netns",
                    self.hub,
                ]
            )
            if self.ipv6:  # nodad: usable at once, not after duplicate detection
                run([*here, "addr", "add", f"{host.ip}/64", "dev", "eth0", "nodad"])
            else:
                run([*here, "addr", "add", f"{host.ip}/24", "dev", "eth0"])
            run([*here, "link", "set", "eth0", "up"])
            run([*hub, "link", "set", host.hub_device, "master", "br0"])
            run([*hub, "link", "set", host.hub_device, "up"])
        # Bridged frames must not detour through the hub's IP filter hooks.
        run(
            ["ip", "netns", "exec", self.hub, "sysctl", "-qw", "net.ipv4.ip_forward=0"], check=False
        )

    def destroy(self) -> list[str]:
        """Delete every namespace this topology made; return what failed."""
        failed = []
        for name in reversed(self._created):
            try:
                run(["ip", "netns", "del", name])
            except (NetnsError, subprocess.TimeoutExpired, OSError) as exc:
                failed.append(f"{name}: {exc}")
        self._created.clear()
        return failed

    def apply(self, net: NetState) -> list[str]:
        """Make the network state true; return notes on what the kernel lacked."""
        run(
            ["ip", "netns", "exec", self.hub, "nft", "-f", "-"],
            stdin=bridge_ruleset(net, self.addresses),
        )
        notes = []
        for host in self.hosts.values():
            notes += self._queueing(net, host)
        return notes

    def _queueing(self, net: NetState, host: Host) -> list[str]:
        wanted = NetState(rate=net.rate, delay=net.delay)
        if host.node in net.delay and not self.has_netem():
            wanted = NetState(rate=net.rate)
            note = f"netem delay for {host.node} skipped: this kernel has no netem qdisc"
        else:
            note = ""
        for argv in qdisc_commands(wanted, host.node, host.hub_device):
            run(["ip", "netns", "exec", self.hub, *argv], check=argv[2] != "del")
        return [note] if note else []

    def has_netem(self) -> bool:
        """Whether the kernel offers the netem qdisc (probed once, on the hub's loopback)."""
        if self.netem_available is None:
            probe = [
                "ip",
                "netns",
                "exec",
                self.hub,
                "tc",
                "qdisc",
                "add",
                "dev",
                "lo",
                "root",
                "netem",
                "delay",
                "1ms",
            ]
            self.netem_available = (
                subprocess.run(probe, capture_output=True, timeout=10).returncode == 0
            )
            if self.netem_available:
                run(
                    ["ip", "netns", "exec", self.hub, "tc", "qdisc", "del", "dev", "lo", "root"],
                    check=False,
                )
        return self.netem_available

    def exec_prefix(self, node: str) -> list[str]:
        return ["ip", "netns", "exec", self.hosts[node].netns]


def _address(i: int, ipv6: bool) -> str:
    return f"{SUBNET6}{10 + i:x}" if ipv6 else f"{SUBNET}.{10 + i}"


def leftovers() -> list[str]:
    """Namespaces made by runs whose process is gone."""
    names = [line.split()[0] for line in run(["ip", "netns", "list"]).splitlines() if line.strip()]
    stale = []
    for name in names:
        match = _OWNED.match(name)
        if match and not _pid_alive(int(match.group(1))):
            stale.append(name)
    return stale


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers() -> list[str]:
    removed = []
    for name in leftovers():
        if (
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30).returncode
            == 0
        ):
            removed.append(name)
    return removed
