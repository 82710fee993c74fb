"""`gossip owner KEY [-n N]`: which members own a key, asked of a running agent.

Rules: one GET /v1/owner on the agent's control API (--api / GOSSIP_API); prints the owners
one per line, best first (or the JSON answer with --json); an unreachable agent, a cluster
that has not settled yet or a bad argument prints one line and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any
from urllib.parse import urlencode

from gossip.runtime.apiclient import ApiClient, ApiClientError, add_client_arguments


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("owner", help="show the owner (and successors) of a work key")
    p.add_argument("key", help="the work item or key")
    p.add_argument("-n", type=int, default=1, help="how many owners, best first (default 1)")
    p.add_argument("--json", action="store_true", help="print the JSON answer")
    add_client_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        answer = ApiClient.from_args(args).call(
            "GET", "/v1/owner?" + urlencode({"key": args.key, "n": args.n})
        )
    except ApiClientError as exc:
        print(f"gossip owner: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
    else:
        for name in answer.get("owners", []):
            print(name)
    return 0
