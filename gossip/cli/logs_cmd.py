"""`gossip logs timeline|summary|report`: read agents' JSON logs (and the
emulator's scenario log) and show what happened.

Rules: every subcommand takes files or folders and `--json`; unreadable lines
are skipped and counted (reported on stderr), a missing file is a clear error
with exit code 2. Colour only on a terminal unless asked (`NO_COLOR` wins).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gossip.logs import html_report, render_text
from gossip.logs.records import LogSet, load
from gossip.logs.summary import DEFAULT_GRACE, summarize
from gossip.logs.timeline import Filter, format_record, record_json, select
from gossip.logs.views import build_views, faults_from

Command = Callable[[argparse.Namespace], int]


def _pipe_safe(command: Command) -> Command:
    """Stop quietly when the reader (a pager, `head`) goes away, as Unix tools do."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            code = command(args)
            sys.stdout.flush()
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        return code

    return run


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("logs", help="inspect agents' JSON logs")
    sub = parser.add_subparsers(dest="logs_command", metavar="ACTION", required=True)

    def common(name: str, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
        p.add_argument("files", nargs="+", metavar="FILE", help="log files or folders")
        p.add_argument("--json", action="store_true", help="machine-readable output")
        return p

    timeline = common("timeline", "one merged, time-ordered view")
    timeline.add_argument("--node", action="append", default=[], help="only this observer")
    timeline.add_argument("--member", action="append", default=[], help="only this subject")
    timeline.add_argument("--event", action="append", default=[], help="only this event")
    timeline.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    timeline.set_defaults(func=_pipe_safe(run_timeline))

    summary = common("summary", "detection latencies, false verdicts, convergence")
    summary.add_argument(
        "--grace",
        type=float,
        default=DEFAULT_GRACE,
        help="seconds after a fault clears during which verdicts still count as caused by it",
    )
    summary.set_defaults(func=_pipe_safe(run_summary))

    report = common("report", "a self-contained HTML report")
    report.add_argument("--html", required=True, type=Path, metavar="OUT", help="page to write")
    report.add_argument("--title", default="gossip cluster report")
    report.add_argument("--grace", type=float, default=DEFAULT_GRACE)
    report.set_defaults(func=_pipe_safe(run_report))


def _load(args: argparse.Namespace) -> LogSet | None:
    missing = [f for f in args.files if not Path(f).exists()]
    if missing:
        print(f"gossip logs: no such file: {', '.join(missing)}", file=sys.stderr)
        return None
    try:
        logs = load(args.files)
    except OSError as exc:
        print(f"gossip logs: cannot read: {exc}", file=sys.stderr)
        return None
    skipped = logs.total_stats().skipped
    if skipped:
        detail = ", ".join(f"{reason}={n}" for reason, n in sorted(skipped.items()))
        print(f"gossip logs: skipped {sum(skipped.values())} bad lines ({detail})", file=sys.stderr)
    return logs


def _use_colour(choice: str) -> bool:
    if choice != "auto":
        return choice == "always"
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def run_timeline(args: argparse.Namespace) -> int:
    logs = _load(args)
    if logs is None:
        return 2
    where = Filter(nodes=args.node, members=args.member, events=args.event)
    origin = logs.records[0].time if logs.records else 0.0
    colour = _use_colour(args.color)
    for record in select(logs.records, where):
        line = record_json(record) if args.json else format_record(record, origin, colour=colour)
        sys.stdout.write(line + "\n")
    return 0


def _emit_json(data: object) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


def run_summary(args: argparse.Namespace) -> int:
    logs = _load(args)
    if logs is None:
        return 2
    summary = summarize(logs, grace=args.grace)
    if args.json:
        _emit_json(summary.to_dict())
    else:
        sys.stdout.write(render_text.render(summary))
    return 0


def run_report(args: argparse.Namespace) -> int:
    logs = _load(args)
    if logs is None:
        return 2
    summary = summarize(logs, grace=args.grace)
    views = summary.views or build_views(logs.records, faults_from(logs.records))
    args.html.write_text(html_report.render(summary, views, args.title), encoding="utf-8")
    if args.json:
        _emit_json({"html": str(args.html), "summary": summary.to_dict()})
    else:
        print(f"wrote {args.html}")
    return 0


def main_report(files: list[str], html: Path) -> int:
    """Write `html` for `files` and print the text summary (used after an emulation)."""
    args = argparse.Namespace(
        files=files, html=html, title="gossip emulation", grace=DEFAULT_GRACE, json=False
    )
    code = run_report(args)
    if code == 0:
        return run_summary(argparse.Namespace(files=files, grace=DEFAULT_GRACE, json=False))
    return code
