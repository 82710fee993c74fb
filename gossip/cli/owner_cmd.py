"""`gossip owner KEY [-n N]`: which members own a key, asked of a running agent.

Rules: one GET on the agent's control API (--api / GOSSIP_API): /v1/owner prints the owners
of KEY one per line, best first; --items prints every declared item with its owner (and the
fencing token where the asked agent holds it) from /v1/ownership; --json prints the answer
as is. An unreachable agent, a cluster that has not settled yet or a bad argument prints one
line and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any
from urllib.parse import urlencode

from gossip.cli.api_command import api_command
from gossip.client.api import ApiClient, add_client_arguments


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("owner", help="show the owner (and successors) of a work key")
    p.add_argument("key", nargs="?", help="the work item or key")
    p.add_argument("-n", type=int, default=1, help="how many owners, best first (default 1)")
    p.add_argument("--items", action="store_true", help="list the declared items and owners")
    p.add_argument("--json", action="store_true", help="print the JSON answer")
    add_client_arguments(p)
    p.set_defaults(func=api_command("owner", run))


def run(client: ApiClient, args: argparse.Namespace) -> int:
    if (args.key is None) == (not args.items):
        print("gossip owner: give a KEY or --items", file=sys.stderr)
        return 2
    if args.items:
        path = "/v1/ownership"
    else:
        path = "/v1/owner?" + urlencode({"key": args.key, "n": args.n})
    answer = client.call("GET", path)
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
    elif args.items:
        print(items_table(answer))
    else:
        for name in answer.get("owners", []):
            print(name)
    return 0


def items_table(answer: dict[str, Any]) -> str:
    items: dict[str, str | None] = answer.get("items", {})
    held: dict[str, int] = answer.get("held", {})
    rows = [("ITEM", "OWNER", "TOKEN")]
    rows += [(i, o or "-", str(held[i]) if i in held else "") for i, o in sorted(items.items())]
    width = [max(len(r[c]) for r in rows) for c in range(2)]
    return "\n".join(f"{r[0]:<{width[0]}}  {r[1]:<{width[1]}}  {r[2]}".rstrip() for r in rows)
