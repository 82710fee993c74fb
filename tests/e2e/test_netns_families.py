"""Five agents in network namespaces, on IPv6 and on IPv4: a seed name with three
records, then join, kill -9 and leave, with the times printed side by side.

Topology: a switch namespace holds a Linux bridge; each agent namespace has one
veth into it, and one more veth joins this test's own namespace so it can poll
the agents' APIs. Agents n0, n1 and n2 start alone, three separate clusters;
n3 and n4 join `seeds.gossip.test`, a name with three records (one per lone
agent) in their namespaces' hosts file (`ip netns exec` mounts
/etc/netns/NAME/hosts over /etc/hosts). Only a joiner that joins every record
brings all five into one cluster. Then n4 is killed (-9) and n3 leaves. Every
namespace, hosts file and process made here is removed at the end, also on
failure; processes are signalled by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from netns_helpers import bridge_namespaces, stop_agents, why_no_netns

from gossip.client.api import ApiClient, ApiClientError
from gossip.client.localcluster import QUICK_CONFIG
from gossip.hostport import format_hostport

pytestmark = [pytest.mark.e2e, pytest.mark.netns]

AGENTS = 5
SEED_NAME = "seeds.gossip.test"
TOKEN = "netns-families-token"
LIMIT_S = 30.0
NETNS_ETC = Path("/etc/netns")


class Topology:
    def __init__(self, family: int, tag: str, subnet: int) -> None:
        self.family = family
        self.switch = f"gsw{family}{tag}"
        self.nodes = [f"gn{family}{tag}x{i}" for i in range(AGENTS)]
        if family == 6:
            self.ips = [f"fd77:{subnet:x}::{i + 1}" for i in range(AGENTS)]
            self.host_ip, self.prefix = f"fd77:{subnet:x}::fe", 64
        else:
            self.ips = [f"10.79.{subnet}.{i + 1}" for i in range(AGENTS)]
            self.host_ip, self.prefix = f"10.79.{subnet}.254", 24
        self.host_if = f"gh{family}{tag}"

    def up(self) -> None:
        bridge_namespaces(
            self.switch, self.nodes, self.ips, self.prefix, (self.host_if, self.host_ip)
        )

    def write_hosts(self, node: str, ips: list[str]) -> None:
        folder = NETNS_ETC / node
        folder.mkdir(parents=True, exist_ok=True)
        lines = ["127.0.0.1 localhost", "::1 localhost"] + [f"{ip} {SEED_NAME}" for ip in ips]
        (folder / "hosts").write_text("\n".join(lines) + "\n")

    def down(self) -> None:
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
        for name in [*self.nodes, self.switch]:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
            shutil.rmtree(NETNS_ETC / name, ignore_errors=True)
        with contextlib.suppress(OSError):
            NETNS_ETC.rmdir()  # only when no one else keeps files there


@pytest.fixture(params=[6, 4], ids=["ipv6", "ipv4"])
def topology(request: pytest.FixtureRequest) -> Iterator[Topology]:
    reason = why_no_netns(("ip",))
    if reason is not None:
        pytest.skip(reason)
    topo = Topology(request.param, str(os.getpid() % 100000), 1 + os.getpid() % 250)
    try:
        topo.up()
        yield topo
    finally:
        topo.down()


def _states(topo: Topology, i: int) -> dict[str, str]:
    try:
        client = ApiClient(format_hostport(topo.ips[i], 7947), TOKEN)
        answer = client.call("GET", "/v1/members", timeout=5)
    except ApiClientError:
        return {}
    return {m["name"]: m["state"] for m in answer["members"]}


def _wait(check: Callable[[], bool], what: str) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < LIMIT_S, f"{what} not reached in {LIMIT_S} s"
        time.sleep(0.1)
    return time.monotonic() - start


def test_five_agents_join_by_a_name_with_three_records_detect_a_crash_and_a_leave(
    topology: Topology, tmp_path: Path
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(QUICK_CONFIG)
    for node in topology.nodes[3:]:
        topology.write_hosts(node, topology.ips[:3])
    procs: list[subprocess.Popen[bytes]] = []
    logs = [tmp_path / f"n{i}.log" for i in range(AGENTS)]
    names = [f"n{i}" for i in range(AGENTS)]
    try:
        for i, (node, ip) in enumerate(zip(topology.nodes, topology.ips, strict=True)):
            cmd = ["ip", "netns", "exec", node, sys.executable, "-m", "gossip", "agent",
                   "--name", names[i], "--bind", format_hostport(ip, 7946),
                   "--api", format_hostport(ip, 7947), "--api-token", TOKEN,
                   "--config", str(config), "--log-format", "json", "--log-file", str(logs[i]),
                   "--data-dir", str(tmp_path / names[i])]  # fmt: skip
            if i >= 3:
                cmd += ["--join", f"{SEED_NAME}:7946"]
            if i == 3:  # the joiners start once the three lone agents answer
                _wait(lambda: all(_states(topology, j) for j in range(3)), "three lone agents")
                start = time.monotonic()
            procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL))
        everyone = dict.fromkeys(names, "alive")
        _wait(lambda: all(_states(topology, i) == everyone for i in range(AGENTS)), "one cluster")
        joined = time.monotonic() - start
        procs[4].send_signal(signal.SIGKILL)
        procs[4].wait(5)
        detected = _wait(
            lambda: all(_states(topology, i).get("n4") == "dead" for i in range(4)), "n4 dead"
        )
        start = time.monotonic()
        procs[3].send_signal(signal.SIGTERM)
        assert procs[3].wait(15) == 0
        _wait(lambda: all(_states(topology, i).get("n3") == "left" for i in range(3)), "n3 left")
        left = time.monotonic() - start
    finally:
        stop_agents(procs)
    started = [json.loads(line) for line in logs[0].read_text().splitlines()]
    address = next(line["address"] for line in started if line.get("event") == "agent_started")
    assert address == format_hostport(topology.ips[0], 7946)  # [v6]:port in the logs
    for log in logs[:3]:
        failed = [json.loads(x) for x in log.read_text().splitlines() if "member_failed" in x]
        assert {line["member"] for line in failed} <= {"n4"}
    print(
        f"netns IPv{topology.family}: joiners started to one cluster {joined:.2f} s, "
        f"kill -9 to seen dead {detected:.2f} s, SIGTERM to seen left {left:.2f} s"
    )
