"""Five agents in network namespaces on a bridge that drops 10% of UDP: no false failures.

Topology: a switch namespace holds a Linux bridge; each agent namespace has one veth
into it (10.77.<k>.i/24), and one more veth joins this test's own namespace (.254) so it
can poll the agents' APIs (TCP, token-protected) without starting a process per poll.
An nftables rule in the switch namespace (bridge family, forward hook) drops 10% of
the UDP frames crossing the bridge, with a counter that proves the loss was active.
Agents run at the lan profile for NETNS_SECONDS; then every agent must still see all
five alive and no agent may have logged member_failed. Everything created here
(namespaces, processes by PID) is removed at the end, also on failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from netns_helpers import bridge_namespaces, sh, stop_agents, why_no_netns

from gossip.client.api import ApiClient, ApiClientError

pytestmark = [pytest.mark.e2e, pytest.mark.netns]

AGENTS = 5
NETNS_SECONDS = 60.0
LOSS_PERCENT = 10


class Topology:
    def __init__(self, tag: str, subnet: int) -> None:
        self.switch = f"gsw{tag}"
        self.nodes = [f"gn{tag}x{i}" for i in range(AGENTS)]
        self.ips = [f"10.77.{subnet}.{i + 1}" for i in range(AGENTS)]
        self.tag = tag
        self.host_ip = f"10.77.{subnet}.254"

    def up(self) -> None:
        bridge_namespaces(self.switch, self.nodes, self.ips, 24, (f"gh{self.tag}", self.host_ip))
        ns = ["ip", "netns", "exec", self.switch]
        sh(*ns, "nft", "add", "table", "bridge", "gossiploss")
        sh(*ns, "nft", "add", "chain", "bridge", "gossiploss", "lossy",
            "{ type filter hook forward priority 0; }")  # fmt: skip
        loss = ["numgen", "random", "mod", "100", "<", str(LOSS_PERCENT), "counter", "drop"]
        sh(*ns, "nft", "add", "rule", "bridge", "gossiploss", "lossy", "meta", "l4proto", "udp",
            *loss)  # fmt: skip

    def dropped(self) -> int:
        text = sh("ip", "netns", "exec", self.switch, "nft", "-j", "list", "table", "bridge",
                   "gossiploss")  # fmt: skip
        for item in json.loads(text)["nftables"]:
            for expr in item.get("rule", {}).get("expr", []):
                if "counter" in expr:
                    return int(expr["counter"]["packets"])
        return 0

    def down(self) -> None:
        for name in [*self.nodes, self.switch]:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


@pytest.fixture
def topology() -> Iterator[Topology]:
    reason = why_no_netns()
    if reason is not None:
        pytest.skip(reason)
    topo = Topology(str(os.getpid() % 100000), 1 + os.getpid() % 250)
    try:
        topo.up()
        yield topo
    finally:
        topo.down()


TOKEN = "netns-test-token"


def _members(topo: Topology, i: int) -> dict[str, str]:
    try:
        answer = ApiClient(f"{topo.ips[i]}:7947", TOKEN).call("GET", "/v1/members", timeout=5)
    except ApiClientError:
        return {}
    return {m["name"]: m["state"] for m in answer["members"]}


def test_five_agents_under_ten_percent_udp_loss_report_no_false_failures(
    topology: Topology, tmp_path: Path
) -> None:
    procs: list[subprocess.Popen[bytes]] = []
    logs = [tmp_path / f"n{i}.log" for i in range(AGENTS)]
    names = {f"n{i}" for i in range(AGENTS)}
    try:
        for i, (node, ip) in enumerate(zip(topology.nodes, topology.ips, strict=True)):
            cmd = ["ip", "netns", "exec", node, sys.executable, "-m", "gossip", "agent",
                   "--name", f"n{i}", "--bind", f"{ip}:7946",
                   "--api", f"{ip}:7947", "--api-token", TOKEN,
                   "--profile", "lan", "--log-format", "json", "--log-file", str(logs[i]),
                   "--data-dir", str(tmp_path / f"n{i}")]  # fmt: skip
            if i:
                cmd += ["--join", f"{topology.ips[0]}:7946"]
            procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL))
        deadline = time.monotonic() + 60
        while not all(_members(topology, i) == dict.fromkeys(names, "alive")
                      for i in range(AGENTS)):  # fmt: skip
            assert time.monotonic() < deadline, "the five agents did not converge"
            time.sleep(0.5)
        start = time.monotonic()
        while time.monotonic() - start < NETNS_SECONDS:
            assert all(p.poll() is None for p in procs), "an agent exited"
            time.sleep(2)
        views = [_members(topology, i) for i in range(AGENTS)]
        dropped = topology.dropped()
    finally:
        stop_agents(procs)
    assert dropped > 0, "the loss rule never dropped a packet"
    assert views == [dict.fromkeys(names, "alive")] * AGENTS
    failed = []
    suspected = 0
    for log in logs:
        for raw in log.read_text().splitlines():
            line = json.loads(raw)
            if line.get("event") == "member_failed":
                failed.append((line["node"], line["member"]))
            suspected += line.get("event") == "member_suspected"
    assert failed == [], f"false failures under {LOSS_PERCENT}% loss: {failed}"
    print(f"netns: {dropped} UDP frames dropped, {suspected} suspicions, 0 failures")
