"""`gossip event`: fire a user event through a running agent.

Rules: the payload is the second argument (UTF-8 text) or, with
--payload-file, a file's bytes (sent as base64); an event above the limit is
refused by the agent with a message naming the limit, printed as one line
with exit status 1.
"""

from __future__ import annotations

import argparse
import base64
from pathlib import Path
from typing import Any

from gossip.cli.api_command import api_command
from gossip.client.api import ApiClient, add_client_arguments

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


def event(client: ApiClient, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"name": args.name, "coalesce": args.coalesce}
    if args.payload_file is not None:
        with args.payload_file.open("rb") as f:
            data = f.read(MAX_PAYLOAD_FILE + 1)
        body["payload_base64"] = base64.b64encode(data).decode()
    else:
        body["payload"] = args.payload
    answer = client.call("POST", "/v1/event", body)
    print(f"event {answer['name']} fired ({answer['size']} bytes of payload)")
    return 0
