"""Helpers for the network-namespace tests: can they run here, run a command,
stop the agents a test started.

Rules: only processes the test started are signalled, by PID; every command is
bounded in time and a failure raises with its stderr.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Sequence


def why_no_netns(tools: Sequence[str] = ("ip", "nft")) -> str | None:
    """Why network-namespace tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces (CI runs it as root)"
    for tool in tools:
        if shutil.which(tool) is None:
            return f"needs `{tool}` (apt-get install iproute2 nftables)"
    probe = f"gprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def sh(*args: str) -> str:
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def stop_agents(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM (graceful leave) to those still running, then SIGKILL what lingers."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def bridge_namespaces(
    switch: str, nodes: Sequence[str], ips: Sequence[str], prefix: int, host: tuple[str, str]
) -> None:
    """A switch namespace holding bridge br0; one namespace per node with eth0
    (its address in `ips`, /`prefix`) plugged into the bridge; and one veth from
    the caller's namespace, `host` = (interface name, address), so the test can
    reach the agents. IPv6 addresses skip duplicate detection (usable at once)."""

    def address(ip: str) -> list[str]:
        return ["addr", "add", f"{ip}/{prefix}", "dev"]

    def dad(ip: str) -> list[str]:
        return ["nodad"] if ":" in ip else []

    sh("ip", "netns", "add", switch)
    ns = ["ip", "netns", "exec", switch]
    sh(*ns, "ip", "link", "add", "br0", "type", "bridge")
    sh(*ns, "ip", "link", "set", "br0", "up")
    for i, (node, ip) in enumerate(zip(nodes, ips, strict=True)):
        sh("ip", "netns", "add", node)
        # Both ends are created inside the switch namespace; one moves to the node.
        sh(*ns, "ip", "link", "add", f"p{i}", "type", "veth", "peer", "name", "eth0")
        sh(*ns, "ip", "link", "set", "eth0", "netns", node)
        sh(*ns, "ip", "link", "set", f"p{i}", "master", "br0", "up")
        inside = ["ip", "netns", "exec", node, "ip"]
        sh(*inside, *address(ip), "eth0", *dad(ip))
        sh(*inside, "link", "set", "eth0", "up")
        sh(*inside, "link", "set", "lo", "up")
    host_if, host_ip = host
    sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", "hp", "netns", switch)
    sh(*ns, "ip", "link", "set", "hp", "master", "br0", "up")
    sh("ip", *address(host_ip), host_if, *dad(host_ip))
    sh("ip", "link", "set", host_if, "up")
