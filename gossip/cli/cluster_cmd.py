"""`gossip cluster`: start N agents on loopback, show the members table, stop them cleanly.

Rules: agents are subprocesses (`python -m gossip agent ...`) on 127.0.0.1 with
ports base, base+2, ... (APIs on the odd ports, so agent 1's API is the default
127.0.0.1:7947 when base is 7946); their JSON logs go to --dir. On --for expiry or
Ctrl-C every agent gets SIGTERM (graceful leave), then SIGKILL after a grace.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gossip.cli.output import members_table
from gossip.client.localcluster import LocalCluster, ports_free


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("cluster", help="run a small local cluster on loopback")
    p.add_argument("-n", "--agents", type=int, default=5, help="how many agents (default 5)")
    p.add_argument("--base-port", type=int, default=7946, help="first port (default 7946)")
    p.add_argument("--profile", default="local", help="lan | wan | local (default local)")
    p.add_argument("--for", dest="duration", type=float, help="stop after this many seconds")
    p.add_argument("--dir", type=Path, help="where logs and data go (default: a temp dir)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for all alive")
    p.set_defaults(func=run_cluster)


def run_cluster(args: argparse.Namespace) -> int:
    if not 1 <= args.agents <= 100:
        print("gossip cluster: --agents must be 1..100", file=sys.stderr)
        return 2
    if not ports_free(args.base_port, 2 * args.agents):
        print(
            f"gossip cluster: ports {args.base_port}..{args.base_port + 2 * args.agents - 1} "
            "are not all free on 127.0.0.1 (try --base-port)",
            file=sys.stderr,
        )
        return 2
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="gossip-cluster-"))
    cluster = LocalCluster(args.agents, workdir, base_port=args.base_port, profile=args.profile)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    started = time.monotonic()
    try:
        cluster.start()
        print(f"started {args.agents} agents on 127.0.0.1:{args.base_port}.. (logs in {workdir})")
        try:
            cluster.wait_all_alive(args.timeout)
        except TimeoutError as exc:
            print(f"gossip cluster: {exc}; see the logs in {workdir}", file=sys.stderr)
            return 1
        took = time.monotonic() - started
        print(f"all {args.agents} agents see {args.agents} alive members after {took:.1f} s\n")
        view = cluster.agents[0].members()
        print(members_table([view[k] for k in sorted(view)]))
        api = f"127.0.0.1:{args.base_port + 1}"
        print(f"\ntry: gossip members --api {api}   |   gossip monitor --api {api}")
        if args.duration is None:
            print("running; Ctrl-C stops every agent gracefully")
            while True:
                time.sleep(3600)
        else:
            time.sleep(max(0.0, args.duration))
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        codes = cluster.stop()
        clean = sum(1 for c in codes.values() if c == 0)
        print(f"stopped: {clean} of {len(codes)} agents left gracefully")


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
