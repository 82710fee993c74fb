"""Client commands for a running agent: members, join, leave, monitor, info.

Rules: each command talks to one agent's control API (--api / GOSSIP_API) and
prints a table or, with --json, the raw JSON; an unreachable agent or an API
error prints one line and exits 1.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from gossip.cli.api_command import api_command
from gossip.cli.member_filter_args import add_filter_arguments, members_path
from gossip.cli.output import members_table
from gossip.client.api import ApiClient, add_client_arguments


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("members", help="list the members an agent sees")
    add_client_arguments(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    add_filter_arguments(p)
    p.set_defaults(func=api_command("members", members))

    p = subparsers.add_parser("join", help="ask an agent to join seeds")
    add_client_arguments(p)
    p.add_argument("addresses", nargs="+", metavar="SEED", help="HOST:PORT or srv:NAME")
    p.set_defaults(func=api_command("join", join))

    p = subparsers.add_parser("leave", help="ask an agent to leave gracefully and stop")
    add_client_arguments(p)
    p.set_defaults(func=api_command("leave", leave))

    p = subparsers.add_parser("monitor", help="stream membership and user events from an agent")
    add_client_arguments(p)
    p.add_argument("--json", action="store_true", help="print JSON lines")
    p.set_defaults(func=api_command("monitor", monitor))

    p = subparsers.add_parser("info", help="show an agent's own state and health")
    add_client_arguments(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=api_command("info", info))


def members(client: ApiClient, args: argparse.Namespace) -> int:
    answer = client.call("GET", members_path(args))
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
    else:
        print(members_table(answer["members"]))
    return 0


def join(client: ApiClient, args: argparse.Namespace) -> int:
    answer = client.call("POST", "/v1/join", {"addresses": args.addresses})
    print(f"join requested: {answer['resolved']} of {answer['requested']} addresses resolved")
    return 0 if answer["resolved"] else 1


def leave(client: ApiClient, args: argparse.Namespace) -> int:
    client.call("POST", "/v1/leave")
    print("leaving: the agent will broadcast its departure and stop")
    return 0


def monitor(client: ApiClient, args: argparse.Namespace) -> int:
    for event in client.stream_lines("/v1/events"):
        if event.get("event") == "heartbeat":
            continue
        if event.get("event") == "subscribed":
            # First line: tells a reader (and tests) that nothing from now on is missed.
            if args.json:
                print(json.dumps(event, sort_keys=True), flush=True)
            else:
                print(f"watching membership events of {event.get('node')}", flush=True)
            continue
        if args.json:
            print(json.dumps(event, sort_keys=True), flush=True)
            continue
        if event.get("event") == "user":
            payload = event.get("payload", event.get("payload_base64", ""))
            print(
                f"{'user_event':<17} {event.get('name', ''):<20} "
                f"ltime={event.get('ltime', '')} payload={payload!r}",
                flush=True,
            )
            continue
        extras = {
            k: v
            for k, v in event.items()
            if k not in ("event", "member", "node", "address", "state", "incarnation", "tags")
        }
        detail = " ".join(f"{k}={v}" for k, v in sorted(extras.items()))
        print(
            f"{event.get('event', '?'):<17} {event.get('member', ''):<20} "
            f"{event.get('address', ''):<21} inc={event.get('incarnation', '')} {detail}",
            flush=True,
        )
    return 0


def info(client: ApiClient, args: argparse.Namespace) -> int:
    me = client.call("GET", "/v1/self")
    health = client.call("GET", "/v1/health")
    if args.json:
        print(json.dumps({"self": me, "health": health}, indent=2, sort_keys=True))
        return 0
    for key in ("name", "node_id", "address", "state", "incarnation", "joined"):
        print(f"{key:<14}{me.get(key, '')}")
    tags = ",".join(f"{k}={v}" for k, v in sorted(me.get("tags", {}).items()))
    print(f"{'tags':<14}{tags}")
    print(f"{'health':<14}{health['health']} (0 is best)")
    print(f"{'alive':<14}{health['members_alive']} members")
    print(f"{'status':<14}{health['status']}")
    return 0
