"""`gossip members` filter flags, turned into the query of GET /v1/members.

Rules: the agent checks the filters (runtime/memberfilter.py) and answers a
bad one with a 400 that the command prints; here a flag only needs its shape:
`--tag` is KEY=REGEX, else a usage error.
"""

from __future__ import annotations

import argparse
from urllib.parse import urlencode


def add_filter_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--status", help="only members in this state: alive, suspect, failed, left (or A,B)"
    )
    p.add_argument("--name", help="only members whose whole name matches this regex")
    p.add_argument(
        "--tag",
        dest="tag_filters",
        action="append",
        type=_tag_filter,
        default=[],
        metavar="KEY=REGEX",
        help="only members whose tag KEY matches REGEX in whole (repeatable, all must match)",
    )


def members_path(args: argparse.Namespace) -> str:
    query: list[tuple[str, str]] = []
    if args.status:
        query.append(("status", args.status))
    if args.name is not None:
        query.append(("name", args.name))
    query += [(f"tag.{key}", pattern) for key, pattern in args.tag_filters]
    return "/v1/members" + ("?" + urlencode(query) if query else "")


def _tag_filter(text: str) -> tuple[str, str]:
    key, sep, pattern = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=REGEX, got {text!r}")
    return key, pattern
