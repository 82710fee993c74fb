"""Commands that change membership through an agent: force-leave and tags.

Rules: each command talks to one agent's control API (--api / GOSSIP_API);
an unreachable agent or a refusal prints one line and exits 1; a flag of the
wrong shape is a usage error (exit 2) before anything is sent.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from gossip.cli.api_command import api_command
from gossip.client.api import ApiClient, add_client_arguments


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "force-leave",
        help="mark a failed member as left (--prune: forget it everywhere now)",
    )
    add_client_arguments(p)
    p.add_argument("name", help="the failed member's name")
    p.add_argument(
        "--prune", action="store_true", help="remove it from every member table right away"
    )
    p.set_defaults(func=api_command("force-leave", force_leave))

    p = subparsers.add_parser(
        "tags", help="set or delete an agent's tags live (kept across restarts)"
    )
    add_client_arguments(p)
    p.add_argument(
        "--set", dest="sets", action="append", type=_key_value, default=[],
        metavar="KEY=VALUE", help="repeatable",
    )  # fmt: skip
    p.add_argument(
        "--delete", dest="deletes", action="append", default=[], metavar="KEY", help="repeatable"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=api_command("tags", tags))


def force_leave(client: ApiClient, args: argparse.Namespace) -> int:
    answer = client.call("POST", "/v1/force-leave", {"name": args.name, "prune": args.prune})
    done = "pruned from every member table" if args.prune else "marked left"
    print(f"{answer['name']}: {done}")
    return 0


def tags(client: ApiClient, args: argparse.Namespace) -> int:
    if args.sets or args.deletes:
        body = {"set": dict(args.sets), "delete": list(args.deletes)}
        current = client.call("POST", "/v1/tags", body)["tags"]
    else:
        current = client.call("GET", "/v1/self").get("tags", {})
    if args.json:
        print(json.dumps(current, indent=2, sort_keys=True))
    else:
        for key, value in sorted(current.items()):
            print(f"{key}={value}")
    return 0


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value
