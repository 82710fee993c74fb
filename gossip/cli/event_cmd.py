"""`gossip event` and `gossip query`, through a running agent.

Rules: the payload is the second argument (UTF-8 text) or, with
--payload-file, a file's bytes (sent as base64); an event or query above the
limit is refused by the agent with a message naming the limit, printed as
one line with exit status 1. `gossip query` prints each ack and answer as it
arrives, then who acked, who answered and who did not before the deadline;
a filter that matches nobody says so. A query over the agent's bounds
(HTTP 429) is refused with the agent's reason: how many may be open, or
the rate and when to try again.
"""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path
from typing import Any

from gossip.cli.api_command import api_command
from gossip.client.api import ApiClient, ApiClientError, add_client_arguments

MAX_PAYLOAD_FILE = 64 * 1024
"""Read no more of a payload file than this (the agent refuses far less)."""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("event", help="fire a user event to every member")
    add_client_arguments(p)
    p.add_argument("name", metavar="NAME", help="the event's name, e.g. deploy")
    p.add_argument("payload", metavar="PAYLOAD", nargs="?", default="", help="text payload")
    p.add_argument("--payload-file", type=Path, help="read the payload from this file")
    p.add_argument(
        "--coalesce",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="receivers may skip it once a newer event of this name was delivered (default)",
    )
    p.set_defaults(func=api_command("event", event))

    p = subparsers.add_parser("query", help="ask the matching members, collect their answers")
    add_client_arguments(p)
    p.add_argument("name", metavar="NAME", help="the query's name, e.g. uptime")
    p.add_argument("payload", metavar="PAYLOAD", nargs="?", default="", help="text payload")
    p.add_argument("--payload-file", type=Path, help="read the payload from this file")
    p.add_argument("--node", default="*", metavar="GLOB", help="members whose name matches")
    p.add_argument(
        "--tag", action="append", default=[], metavar="KEY=GLOB", help="tag filter (repeatable)"
    )
    p.add_argument("--timeout", type=float, default=5.0, metavar="S", help="seconds (default 5)")
    p.add_argument("--no-ack", dest="ack", action="store_false", help="do not ask for acks")
    p.add_argument(
        "--relay",
        type=int,
        default=0,
        metavar="N",
        help="each reply also comes through N random members (0-5; for lossy paths)",
    )
    p.add_argument("--json", action="store_true", help="print JSON lines")
    p.set_defaults(func=api_command("query", query))


def _with_payload(body: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    if args.payload_file is not None:
        with args.payload_file.open("rb") as f:
            data = f.read(MAX_PAYLOAD_FILE + 1)
        body["payload_base64"] = base64.b64encode(data).decode()
    else:
        body["payload"] = args.payload
    return body


def event(client: ApiClient, args: argparse.Namespace) -> int:
    body = _with_payload({"name": args.name, "coalesce": args.coalesce}, args)
    answer = client.call("POST", "/v1/event", body)
    print(f"event {answer['name']} fired ({answer['size']} bytes of payload)")
    return 0


def query(client: ApiClient, args: argparse.Namespace) -> int:
    tags = {}
    for item in args.tag:
        key, sep, glob = item.partition("=")
        if not sep or not key:
            raise ApiClientError(f"--tag {item!r}: expected KEY=GLOB")
        tags[key] = glob
    body = {"name": args.name, "node": args.node, "tags": tags, "ack": args.ack}
    body.update(timeout=args.timeout, relay=args.relay)
    for line in client.stream_lines("/v1/query", "POST", _with_payload(body, args)):
        if args.json:
            print(json.dumps(line, sort_keys=True), flush=True)
            continue
        kind = line.get("event")
        if kind == "query" and not line.get("expected"):
            print("no alive member matches the filter", flush=True)
        elif kind == "ack":
            print(f"ack from {line['from']}", flush=True)
        elif kind == "response":
            payload = line.get("payload", line.get("payload_base64", ""))
            print(f"response from {line['from']}: {payload}", flush=True)
        elif kind == "done":
            print(f"{len(line['acks'])} acks, {len(line['responses'])} responses")
            if line["no_ack"]:
                print("no ack from: " + ", ".join(line["no_ack"]))
            if line["no_response"]:
                print("no response from: " + ", ".join(line["no_response"]))
    return 0
