"""`gossip keygen` and `gossip keys list|install|use|remove`.

Rules: keygen prints a fresh random key (base64) and touches nothing else.
`keys` sends one command to one agent's control API; that agent runs it on
every alive member and answers per node. The command prints one line per node
and one per key id (or the JSON with --json) and exits 1 if any node failed
or did not answer, so a script can tell a partial rotation from a full one.
Keys are never printed back, only their ids.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from gossip.cli.api_command import api_command
from gossip.client.api import ApiClient, add_client_arguments
from gossip.security.keyops import Command, format_summary
from gossip.security.keyring import KeyringError, decode_key, encode_key, generate_key

# Fanning out waits for the slowest member (bounded by the stream timeout).
KEYS_TIMEOUT_S = 60.0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("keygen", help="print a new random encryption key (base64)")
    p.add_argument("--bytes", type=int, default=32, choices=(16, 24, 32), help="key size")
    p.set_defaults(func=keygen)

    p = subparsers.add_parser("keys", help="manage the encryption keyring across the cluster")
    p.add_argument("op", choices=("list", "install", "use", "remove"))
    p.add_argument("key", nargs="?", help="base64 key (install, use, remove)")
    add_client_arguments(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=api_command("keys", keys))


def keygen(args: argparse.Namespace) -> int:
    print(encode_key(generate_key(args.bytes)))
    return 0


def build_command(op: str, key_text: str | None) -> Command:
    if op == "list":
        return Command("list")
    if key_text is None:
        raise KeyringError(f"`gossip keys {op}` needs a KEY")
    return Command(op, decode_key(key_text))


def keys(client: ApiClient, args: argparse.Namespace) -> int:
    try:
        command = build_command(args.op, args.key)
    except KeyringError as exc:
        print(f"gossip keys: {exc}", file=sys.stderr)
        return 1
    if command.op == "list":
        summary = client.call("GET", "/v1/keys", timeout=KEYS_TIMEOUT_S)
    else:
        summary = client.call("POST", "/v1/keys", command.to_json(), timeout=KEYS_TIMEOUT_S)
    if not isinstance(summary, dict):
        print("gossip keys: unexpected answer from the agent", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    else:
        print("\n".join(format_summary(summary)))
    return 1 if summary.get("failed") else 0
