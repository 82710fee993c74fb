"""`gossip kv put|get|delete|list|watch|digest`: the replicated store from the shell.

Rules: every command talks to one agent's control API (--api / GOSSIP_API),
which coordinates the request with the key's replicas. Values travel as raw
bytes: `put KEY VALUE`, `put KEY -` (stdin) or `put KEY --file F`; `get`
writes the value bytes to stdout unchanged. `get --local` shows only this
agent's own copy (tombstones included) as JSON, without asking replicas.
`watch` prints each new state of a key or prefix as a JSON line (client/watch.py), and
runs --handler with that line on its stdin. Errors print one line to stderr and exit 1
(a missing key too).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from gossip.cli.api_command import api_command
from gossip.client.api import ApiClient, ApiClientError, add_client_arguments
from gossip.client.kv import call, key_path
from gossip.client.watch import changes


def register(subparsers: Any) -> None:
    kv = subparsers.add_parser("kv", help="read and write the replicated key-value store")
    sub = kv.add_subparsers(dest="kv_command", metavar="ACTION", required=True)

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
        add_client_arguments(p)
        return p

    p = action("put", "write a value")
    p.add_argument("key")
    p.add_argument("value", nargs="?", help="the value; '-' reads stdin")
    p.add_argument("--file", type=Path, help="read the value from this file")
    p.add_argument(
        "--ephemeral", action="store_true", help="delete the key when this agent fails or leaves"
    )
    _consistency(p)
    _after(p)
    p.set_defaults(func=api_command("kv put", put))

    p = action("watch", "print each change of a key or a prefix (one JSON line each)")
    p.add_argument("key", nargs="?")
    p.add_argument("--prefix", help="watch every key under this prefix")
    p.add_argument("--handler", help="run this command for each change, the JSON on its stdin")
    p.add_argument("--count", type=int, default=0, help="stop after N changes (0: never)")
    p.add_argument("--wait", type=float, default=30.0, help="long-poll length, s (30)")
    p.set_defaults(func=api_command("kv watch", watch))

    p = action("get", "read a value (written to stdout as is)")
    p.add_argument("key")
    p.add_argument("--local", action="store_true", help="only this agent's copy, as JSON")
    _consistency(p)
    p.set_defaults(func=api_command("kv get", get))

    p = action("delete", "delete a key (writes a tombstone)")
    p.add_argument("key")
    _consistency(p)
    _after(p)
    p.set_defaults(func=api_command("kv delete", delete))

    p = action("list", "list live keys by prefix, across the cluster")
    p.add_argument("--prefix", default="")
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=api_command("kv list", listing))

    p = action("digest", "per-partition Merkle roots on this agent")
    p.set_defaults(func=api_command("kv digest", digest))


def _consistency(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--consistency", choices=("one", "quorum", "all"), default="quorum", help="(quorum)"
    )


def _after(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--after",
        metavar="VERSION",
        help="stamp the write above this version (the last one this client saw or wrote)",
    )


def _write_query(args: argparse.Namespace) -> dict[str, str]:
    return {"consistency": args.consistency} | ({"after": args.after} if args.after else {})


def put(client: ApiClient, args: argparse.Namespace) -> int:
    if args.file is not None:
        value = args.file.read_bytes()
    elif args.value == "-":
        value = sys.stdin.buffer.read()
    elif args.value is not None:
        value = args.value.encode()
    else:
        raise ApiClientError("give a VALUE, '-' for stdin, or --file")
    query = _write_query(args) | ({"ephemeral": "1"} if args.ephemeral else {})
    answer = json.loads(call(client, "PUT", key_path(args.key, **query), value))
    print(f"{answer['key']} written (version {answer['version']})")
    return 0


def get(client: ApiClient, args: argparse.Namespace) -> int:
    if args.local:
        answer = json.loads(call(client, "GET", key_path(args.key, local="1")))
        print(json.dumps(answer, indent=2, sort_keys=True))
        return 0
    value = call(client, "GET", key_path(args.key, consistency=args.consistency))
    sys.stdout.buffer.write(value)
    sys.stdout.buffer.flush()
    return 0


def watch(client: ApiClient, args: argparse.Namespace) -> int:
    if args.count < 0:
        raise ApiClientError("--count must be 0 or more")
    found = changes(client, key=args.key, prefix=args.prefix, wait=args.wait)
    for seen, change in enumerate(found, start=1):
        line = json.dumps(change, sort_keys=True)
        print(line, flush=True)
        if args.handler:
            # No shell: the command is split like a shell would, then run directly.
            subprocess.run(shlex.split(args.handler), input=line.encode() + b"\n", check=False)
        if seen == args.count:
            break
    return 0


def delete(client: ApiClient, args: argparse.Namespace) -> int:
    answer = json.loads(call(client, "DELETE", key_path(args.key, **_write_query(args))))
    print(f"{answer['key']} deleted (version {answer['version']})")
    return 0


def listing(client: ApiClient, args: argparse.Namespace) -> int:
    query = urlencode({"prefix": args.prefix, "limit": args.limit})
    answer = json.loads(call(client, "GET", f"/v1/kv?{query}"))
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
        return 0
    for item in answer["keys"]:
        print(f"{item['key']}\t{item['size']}")
    if answer.get("truncated"):
        print(f"(cut at {args.limit} keys; use --limit)", file=sys.stderr)
    return 0


def digest(client: ApiClient, args: argparse.Namespace) -> int:
    print(json.dumps(json.loads(call(client, "GET", "/v1/kv-digest")), indent=2, sort_keys=True))
    return 0
