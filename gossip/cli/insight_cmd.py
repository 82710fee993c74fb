"""Commands that explain what an agent sees: rtt, reachability, why.

Rules: each asks one agent's control API (--api / GOSSIP_API) and prints a
short table or, with --json, the raw answer; errors are one line, exit 1.
`why` exits 0 even when some members did not answer: it says which.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any
from urllib.parse import urlencode

from gossip.cli.api_command import api_command
from gossip.client.api import ApiClient, add_client_arguments

# Fields every history record has; the rest are printed as the record's detail.
_RECORD_FIELDS = {"time_ms", "observer", "member", "event"}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "rtt", help="estimated round trip between two members (network coordinates)"
    )
    p.add_argument("a", metavar="A", help="a member")
    p.add_argument("b", metavar="B", nargs="?", help="another member (default: this agent)")
    p.add_argument("--json", action="store_true", help="print the JSON answer")
    add_client_arguments(p)
    p.set_defaults(func=api_command("rtt", rtt))

    p = subparsers.add_parser(
        "reachability", help="ping every member directly from an agent, now, and list answers"
    )
    p.add_argument("--timeout", type=float, default=1.0, help="seconds to wait (default 1)")
    p.add_argument("--json", action="store_true", help="print the JSON answer")
    add_client_arguments(p)
    p.set_defaults(func=api_command("reachability", reachability))

    p = subparsers.add_parser(
        "why", help="what every live agent saw of a member, merged into one story"
    )
    p.add_argument("member", metavar="MEMBER")
    p.add_argument("--json", action="store_true", help="print the JSON answer")
    add_client_arguments(p)
    p.set_defaults(func=api_command("why", why))


def rtt(client: ApiClient, args: argparse.Namespace) -> int:
    query = {"a": args.a} | ({"b": args.b} if args.b else {})
    answer = client.call("GET", "/v1/rtt?" + urlencode(query))
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
    else:
        print(f"estimated {answer['a']} <-> {answer['b']} rtt: {answer['rtt_ms']:.3f} ms")
    return 0


def reachability(client: ApiClient, args: argparse.Namespace) -> int:
    query = urlencode({"timeout": args.timeout})
    answer = client.call("GET", f"/v1/reachability?{query}", timeout=args.timeout + 10)
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
        return 0
    rows = answer["members"]
    print(f"direct pings from {answer['from']} (waited {answer['timeout_s']} s):")
    width = max([len(r["name"]) for r in rows] + [6])
    for r in rows:
        result = f"{r['rtt_ms']:.3f} ms" if r["answered"] else "no answer"
        print(f"  {r['name']:<{width}}  {r['address']:<22}  {result}")
    answered = sum(1 for r in rows if r["answered"])
    print(f"{answered} of {len(rows)} answered")
    return 0


def why(client: ApiClient, args: argparse.Namespace) -> int:
    answer = client.call("GET", "/v1/why?" + urlencode({"member": args.member}), timeout=15)
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
        return 0
    print(story_text(answer))
    return 0


def story_text(answer: dict[str, Any]) -> str:
    """The merged story as lines: time, observer, event, detail."""
    lines = [f"what the cluster saw of {answer['member']}:"]
    for r in answer["story"]:
        stamp = time.strftime("%H:%M:%S", time.gmtime(r["time_ms"] / 1000))
        millis = r["time_ms"] % 1000
        detail = " ".join(f"{k}={v}" for k, v in sorted(r.items()) if k not in _RECORD_FIELDS)
        lines.append(f"  {stamp}.{millis:03d}  {r['observer']:<16} {r['event']:<16} {detail}")
    if not answer["story"]:
        lines.append("  (nothing recorded)")
    silent = {k: v for k, v in answer["observers"].items() if v != "ok"}
    for name, why_not in sorted(silent.items()):
        lines.append(f"  ({name}: {why_not})")
    return "\n".join(lines)
