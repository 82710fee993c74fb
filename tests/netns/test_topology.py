"""Namespaces on a bridge: emulated loss and partitions act on the receiving
side, and teardown leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from gossip.emulate.netns import Topology, run
from gossip.emulate.plan import NetState

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(shutil.which("nft") is None, reason="needs nftables"),
]

RECEIVER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 9999)); s.settimeout(0.4); n = 0
print("ready", flush=True)
try:
    while True:
        s.recv(64); n += 1
except socket.timeout:
    print(n)
"""
SENDER = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[2])):
    s.sendto(b"x", (sys.argv[1], 9999)); time.sleep(0.0003)
"""


def delivered(topo: Topology, sender: str, receiver: str, count: int = 400) -> int:
    ip = topo.hosts[receiver].ip
    recv = subprocess.Popen(
        [*topo.exec_prefix(receiver), sys.executable, "-c", RECEIVER, ip],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert recv.stdout is not None
    assert recv.stdout.readline().strip() == "ready"
    subprocess.run(
        [*topo.exec_prefix(sender), sys.executable, "-c", SENDER, ip, str(count)],
        check=True,
        timeout=30,
    )
    out, _ = recv.communicate(timeout=30)
    return int(out.strip())


def netns_names() -> set[str]:
    return {line.split()[0] for line in run(["ip", "netns", "list"]).splitlines() if line.strip()}


def test_loss_partition_and_rate_then_clean_teardown() -> None:
    before = netns_names()
    with Topology(["n1", "n2", "n3"]) as topo:
        assert {topo.hub, *(h.netns for h in topo.hosts.values())} <= netns_names()
        assert delivered(topo, "n1", "n2") == 400
        topo.apply(NetState(loss={"n2": 30.0}))
        got = delivered(topo, "n1", "n2")
        assert 200 < got < 360  # about 280 expected
        assert delivered(topo, "n1", "n3") == 400  # loss is on n2's input only
        topo.apply(NetState(groups=(("n1",), ("n2", "n3"))))
        assert delivered(topo, "n1", "n3", 50) == 0
        assert delivered(topo, "n2", "n3", 50) == 50
        notes = topo.apply(NetState(rate={"n3": "1mbit"}, delay={"n3": (20.0, 0.0)}))
        qdisc = run(
            [
                "ip",
                "netns",
                "exec",
                topo.hub,
                "tc",
                "qdisc",
                "show",
                "dev",
                topo.hosts["n3"].hub_device,
            ]
        )
        if topo.has_netem():
            assert "netem" in qdisc and notes == []
        else:
            assert "tbf" in qdisc and "no netem" in notes[0]
        topo.apply(NetState())
        assert delivered(topo, "n1", "n2", 50) == 50
    time.sleep(0.1)
    assert netns_names() == before


def test_a_failure_while_building_still_tears_down() -> None:
    before = netns_names()
    topo = Topology(["n1", "n2"])
    topo.hosts["n2"] = topo.hosts["n2"].__class__("n2", topo.hosts["n2"].netns, "not-an-ip", "p2")
    with pytest.raises(Exception, match="not-an-ip"), topo:
        pass
    assert netns_names() == before
