"""`gossip bench NAME`: run one of the benchmarks in gossip/bench.

Rules: every module in the gossip.bench package becomes a subcommand named after the
module, with its docstring's first line as help; it must define `add_arguments(parser)` and
`run(args) -> int`. Adding a benchmark therefore needs no edit here.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from typing import Any

import gossip.bench


def _help(module: Any) -> str:
    doc = (module.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else module.__name__


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("bench", help="run a benchmark and print its figures")
    names = parser.add_subparsers(dest="benchmark", metavar="NAME")
    for info in sorted(pkgutil.iter_modules(gossip.bench.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"gossip.bench.{info.name}")
        if not (hasattr(module, "add_arguments") and hasattr(module, "run")):
            continue
        sub = names.add_parser(info.name, help=_help(module), description=_help(module))
        module.add_arguments(sub)
        sub.set_defaults(func=module.run)
    parser.set_defaults(func=lambda _args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2
