"""The `gossip` command line.

Each subcommand lives in its own module under gossip.cli, exposing
`register(subparsers)`, which adds its parser and sets `func` (a callable that
takes the parsed namespace and returns an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from gossip import __version__

# Modules that contribute subcommands, in the order they appear in --help.
COMMAND_MODULES = (
    "gossip.cli.agent_cmd",
    "gossip.cli.client_cmd",
    "gossip.cli.member_cmd",
    "gossip.cli.insight_cmd",
    "gossip.cli.event_cmd",
    "gossip.cli.cluster_cmd",
    "gossip.cli.simulate_cmd",
    "gossip.cli.owner_cmd",
    "gossip.cli.kv_cmd",
    "gossip.cli.logs_cmd",
    "gossip.cli.keys_cmd",
    "gossip.cli.bench_cmd",
    "gossip.cli.emulate_cmd",
    "gossip.cli.torture_cmd",
)


# Commands whose module is imported alone: a long-running agent should not carry the
# memory of every other command's imports (numpy, cryptography, ...).
SOLO_COMMANDS = {"agent": "gossip.cli.agent_cmd"}


def build_parser(modules: Sequence[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gossip",
        description="Leaderless peer-to-peer agent: membership, work ownership, replicated data.",
    )
    parser.add_argument("--version", action="version", version=f"gossip {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # subcommand not present in this build
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    solo = SOLO_COMMANDS.get(given[0]) if given else None
    parser = build_parser((solo,) if solo else COMMAND_MODULES)
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    result: int = func(args)
    return result
