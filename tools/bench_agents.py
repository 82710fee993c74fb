#!/usr/bin/env python3
"""Resource use of N gossip agents beside N Serf agents, on loopback, in one run.

For each implementation: N agents on 127.0.0.1 (gossip at the chosen profile, Serf
at its own profile of the same name), a warm-up until every agent sees N alive, then
a measurement window of --seconds. Reported per agent: CPU % (utime+stime from
/proc over the window), resident memory (VmRSS at the end), UDP packets and payload
bytes received per second (an nftables counter on loopback input per port range;
payload = bytes - 28 per packet for the IPv4+UDP headers) and TCP connections opened
per minute by the whole cluster (SYNs to the agents' ports). Needs root for nftables
(without it the UDP columns come from the agents' own /v1/metrics; Serf's stay empty).

Bounded: at most 100 agents each, loopback only; every process is stopped by PID.
Example: python3 tools/bench_agents.py --agents 20 --seconds 60 --profile lan
With --cprofile, agent 1 of gossip runs under cProfile and the top functions print.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from gossip.client.api import ApiClientError
from gossip.client.localcluster import HOST, LocalCluster, find_free_base, ports_free

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class UdpCounter:
    """nftables counters for UDP arriving on loopback at two port ranges."""

    def __init__(self, ranges: dict[str, tuple[int, int]]) -> None:
        self.table = f"gossipbench{os.getpid()}"
        self.ranges = ranges
        self.ok = os.geteuid() == 0 and shutil.which("nft") is not None

    def _nft(self, *args: str) -> str:
        return subprocess.run(
            ["nft", *args], check=True, capture_output=True, text=True, timeout=10
        ).stdout

    def install(self) -> None:
        if not self.ok:
            return
        try:
            self._nft("add", "table", "inet", self.table)
            self._nft("add", "chain", "inet", self.table, "input",
                      "{ type filter hook input priority -10; }")  # fmt: skip
            for name, (lo, hi) in self.ranges.items():
                self._nft("add", "rule", "inet", self.table, "input", "iif", "lo", "udp",
                          "dport", f"{lo}-{hi}", "counter", "comment", f'"{name}"')  # fmt: skip
                # Connections opened: a SYN without ACK to the agents' ports.
                self._nft("add", "rule", "inet", self.table, "input", "iif", "lo", "tcp",
                          "dport", f"{lo}-{hi}", "tcp", "flags", "&", "(syn", "|", "ack)",
                          "==", "syn", "counter", "comment", f'"{name}/tcp"')  # fmt: skip
        except (subprocess.CalledProcessError, OSError) as exc:
            print(f"nftables unavailable ({exc}); UDP figures from /v1/metrics only")
            self.ok = False

    def read(self) -> dict[str, tuple[int, int]]:
        if not self.ok:
            return {}
        out: dict[str, tuple[int, int]] = {}
        data = json.loads(self._nft("-j", "list", "table", "inet", self.table))
        for item in data["nftables"]:
            rule = item.get("rule")
            if not rule:
                continue
            for expr in rule["expr"]:
                if "counter" in expr:
                    out[rule.get("comment", "")] = (
                        expr["counter"]["packets"],
                        expr["counter"]["bytes"],
                    )
        return out

    def remove(self) -> None:
        if self.ok:
            subprocess.run(["nft", "delete", "table", "inet", self.table], capture_output=True)


@dataclass
class Result:
    cpu_pct: float
    rss_mib: float
    pkts_per_s: float | None
    bytes_per_s: float | None
    tcp_per_min: float | None
    """TCP connections opened per minute, whole cluster (SYNs to the agents' ports)."""


class SerfCluster:
    def __init__(self, n: int, base: int, profile: str, workdir: Path) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.n, self.base, self.profile, self.workdir = n, base, profile, workdir

    def start(self) -> None:
        for i in range(self.n):
            port, rpc = self.base + 2 * i, self.base + 2 * i + 1
            args = ["serf", "agent", f"-node=serf-{i + 1}", f"-bind={HOST}:{port}",
                    f"-rpc-addr={HOST}:{rpc}", f"-profile={self.profile}",
                    "-log-level=warn"]  # fmt: skip
            if i:  # retry-join: the seed may not listen yet
                args += [f"-retry-join={HOST}:{self.base}", "-retry-interval=1s"]
            log = (self.workdir / f"serf-{i + 1}.log").open("wb")
            self.procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT))

    def alive_everywhere(self) -> bool:
        for i in (0, self.n - 1):
            out = subprocess.run(
                ["serf", "members", f"-rpc-addr={HOST}:{self.base + 2 * i + 1}", "-status=alive"],
                capture_output=True, text=True, timeout=10,
            )  # fmt: skip
            if out.returncode != 0 or len(out.stdout.strip().splitlines()) != self.n:
                return False
        return True

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


def port_plan(n: int, *, want_serf: bool) -> tuple[int, int, bool, UdpCounter]:
    """Free port bases for n gossip and n Serf agents (two ports each, ranges apart),
    whether Serf runs (installed and wanted), and a UDP counter over the ranges used."""
    gbase = find_free_base(2 * n)
    sbase = find_free_base(2 * n)
    while abs(sbase - gbase) < 2 * n or not ports_free(sbase, 2 * n):
        sbase = find_free_base(2 * n)
    with_serf = want_serf and shutil.which("serf") is not None
    ranges = {"gossip": (gbase, gbase + 2 * n - 1)}
    if with_serf:
        ranges["serf"] = (sbase, sbase + 2 * n - 1)
    return gbase, sbase, with_serf, UdpCounter(ranges)


def wait(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise SystemExit(f"{what}: not reached within {timeout:.0f} s")


def measure(pids: dict[str, list[int]], seconds: float, counter: UdpCounter) -> dict[str, Result]:
    cpu0 = {k: [cpu_seconds(p) for p in v] for k, v in pids.items()}
    udp0 = counter.read()
    t0 = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - t0
    udp1 = counter.read()
    results = {}
    for k, v in pids.items():
        cpu = sum(cpu_seconds(p) for p in v) - sum(cpu0[k])
        rss = sum(rss_mib(p) for p in v) / len(v)
        pkts = bytes_ = None
        if k in udp1 and k in udp0:
            dp = udp1[k][0] - udp0[k][0]
            db = udp1[k][1] - udp0[k][1]
            pkts = dp / elapsed / len(v)
            bytes_ = (db - 28 * dp) / elapsed / len(v)
        conns = None
        if f"{k}/tcp" in udp1 and f"{k}/tcp" in udp0:
            conns = (udp1[f"{k}/tcp"][0] - udp0[f"{k}/tcp"][0]) * 60 / elapsed
        results[k] = Result(100 * cpu / elapsed / len(v), rss, pkts, bytes_, conns)
    return results


def suspicions(cluster: LocalCluster) -> float:
    """Sum of gossip_suspicions_total over the agents (false ones: nobody failed)."""
    total = 0.0
    for a in cluster.agents:
        try:
            text = a.api().call("GET", "/v1/metrics", timeout=5)
        except ApiClientError:
            continue
        for line in text.splitlines():
            if line.startswith("gossip_suspicions_total "):
                total += float(line.split()[1])
    return total


def print_table(results: dict[str, Result], n: int, seconds: float, profile: str) -> None:
    print(f"\n{n} agents each, {seconds:.0f} s window, profile {profile}, loopback, per agent:")
    print(f"{'':10}{'CPU %':>9}{'RSS MiB':>10}{'UDP pkt/s':>11}{'UDP B/s':>10}{'TCP/min*':>10}")
    for name, r in results.items():
        pk = f"{r.pkts_per_s:.2f}" if r.pkts_per_s is not None else "n/a"
        by = f"{r.bytes_per_s:.0f}" if r.bytes_per_s is not None else "n/a"
        tc = f"{r.tcp_per_min:.0f}" if r.tcp_per_min is not None else "n/a"
        print(f"{name:10}{r.cpu_pct:9.3f}{r.rss_mib:10.1f}{pk:>11}{by:>10}{tc:>10}")
    if "gossip" in results and "serf" in results:
        g, s = results["gossip"], results["serf"]

        def ratio(a: float | None, b: float | None) -> str:
            return f"{a / b:.2f}" if a is not None and b else "n/a"

        print(
            f"{'ratio':10}{ratio(g.cpu_pct, s.cpu_pct):>9}{ratio(g.rss_mib, s.rss_mib):>10}"
            f"{ratio(g.pkts_per_s, s.pkts_per_s):>11}{ratio(g.bytes_per_s, s.bytes_per_s):>10}"
            f"{ratio(g.tcp_per_min, s.tcp_per_min):>10}   (gossip / serf)"
        )
    print("* TCP connections opened per minute by the whole cluster")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--profile", default="lan", choices=("lan", "wan", "local"))
    ap.add_argument(
        "--settle", type=float, default=15.0, help="seconds between all-alive and the window"
    )
    ap.add_argument("--no-serf", action="store_true")
    ap.add_argument(
        "--config", type=Path, help="TOML config file for every gossip agent (e.g. a [store] table)"
    )
    ap.add_argument("--cprofile", action="store_true", help="profile gossip agent 1")
    args = ap.parse_args()
    n = max(1, min(args.agents, 100))
    workdir = Path(tempfile.mkdtemp(prefix="bench-agents-"))
    gbase, sbase, with_serf, counter = port_plan(n, want_serf=not args.no_serf)
    config_text = args.config.read_text() if args.config else None
    cluster = LocalCluster(
        n, workdir / "gossip", base_port=gbase, profile=args.profile, config_text=config_text
    )
    prof_path = workdir / "agent1.prof"
    if args.cprofile:
        a = cluster.agents[0]
        a.args[1:3] = ["-m", "cProfile", "-o", str(prof_path), "-m", "gossip"]
    serf = SerfCluster(n, sbase, args.profile, workdir) if with_serf else None
    counter.install()
    try:
        cluster.start()
        if serf:
            serf.start()
        wait(lambda: cluster.all_see([a.name for a in cluster.agents], "alive",
                                     [cluster.agents[0].name, cluster.agents[-1].name]),
             120, "gossip: all alive")  # fmt: skip
        if serf:
            wait(serf.alive_everywhere, 120, "serf: all alive")
        time.sleep(args.settle)  # let imports, joins and the first push-pulls settle
        pids = {"gossip": [a.proc.pid for a in cluster.agents if a.proc]}
        if serf:
            pids["serf"] = [p.pid for p in serf.procs]
        suspicions0 = suspicions(cluster)
        results = measure(pids, args.seconds, counter)
        print(f"gossip suspicions during the window: {suspicions(cluster) - suspicions0:.0f}")
        if not counter.ok:
            sent = 0.0
            for a in cluster.agents:
                text = a.api().call("GET", "/v1/metrics")
                for line in text.splitlines():
                    if line.startswith("gossip_udp_packets_sent_total "):
                        sent += float(line.split()[1])
            print(f"(gossip lifetime UDP packets sent per agent: {sent / n:.0f})")
        print_table(results, n, args.seconds, args.profile)
    finally:
        cluster.stop(grace=30)  # a profiled agent needs time to write its profile
        if serf:
            serf.stop()
        counter.remove()
    if args.cprofile and prof_path.exists():
        print("\ngossip agent 1, top functions by own time:")
        pstats.Stats(str(prof_path)).sort_stats("tottime").print_stats(15)
    print(f"logs: {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
