"""Bounded reading of JSON-lines logs into typed records.

Rules: log files are untrusted input. Each line is bounded in length before it
is parsed; a line that is too long, is not a JSON object, lacks a valid
`timestamp` or `event`, or (for agent lines) lacks `node` is skipped and counted
by reason, never raised. Agent lines and the emulator's scenario lines share one
record type; `kind` tells them apart.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Literal

MAX_LINE_BYTES = 64 * 1024
MAX_NAME_CHARS = 256
SCENARIO_EVENTS = frozenset(
    {
        "scenario_started",
        "scenario_finished",
        "fault_injected",
        "fault_cleared",
        "agent_spawned",
        "cluster_formed",
        "action_skipped",
    }
)

RecordKind = Literal["agent", "scenario"]


@dataclass(frozen=True, slots=True)
class Record:
    """One parsed log line. `time` is seconds since the Unix epoch (UTC)."""

    time: float
    event: str
    node: str | None
    member: str | None
    fields: Mapping[str, object]
    kind: RecordKind
    source: str = ""
    line: int = 0

    def get_str(self, key: str) -> str | None:
        value = self.fields.get(key)
        return value if isinstance(value, str) else None

    def get_num(self, key: str) -> float | None:
        value = self.fields.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value)


@dataclass
class ReadStats:
    """Per-file counts: lines seen, records kept, lines skipped by reason."""

    lines: int = 0
    records: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def merge(self, other: ReadStats) -> None:
        self.lines += other.lines
        self.records += other.records
        self.skipped.update(other.skipped)

    def to_dict(self) -> dict[str, object]:
        return {"lines": self.lines, "records": self.records, "skipped": dict(self.skipped)}


class BadLine(ValueError):
    """A line that cannot become a record; `reason` is a short stable token."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_timestamp(text: str) -> float:
    """ISO-8601 to epoch seconds; a timestamp without a zone is taken as UTC."""
    if len(text) > 64:
        raise BadLine("bad_timestamp")
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise BadLine("bad_timestamp") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def format_timestamp(epoch: float) -> str:
    """Epoch seconds to ISO-8601 UTC with microseconds and a `Z`."""
    stamp = datetime.fromtimestamp(epoch, tz=UTC)
    return stamp.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _name(obj: Mapping[str, object], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_NAME_CHARS:
        raise BadLine(f"bad_{key}")
    return value


def parse_line(raw: bytes, *, source: str = "", line: int = 0) -> Record:
    """Parse one line (without its newline). Raises BadLine with a reason."""
    if len(raw) > MAX_LINE_BYTES:
        raise BadLine("too_long")
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadLine("not_json") from None
    if not isinstance(obj, dict):
        raise BadLine("not_object")
    stamp = obj.get("timestamp")
    if not isinstance(stamp, str):
        raise BadLine("no_timestamp")
    event = _name(obj, "event")
    if event is None:
        raise BadLine("no_event")
    node = _name(obj, "node")
    member = _name(obj, "member")
    kind: RecordKind = "scenario" if event in SCENARIO_EVENTS and node is None else "agent"
    if kind == "agent" and node is None:
        raise BadLine("no_node")
    return Record(
        time=parse_timestamp(stamp),
        event=event,
        node=node,
        member=member,
        fields=obj,
        kind=kind,
        source=source,
        line=line,
    )


def _bounded_lines(stream: BinaryIO) -> Iterator[bytes | None]:
    """Yield lines without newlines; None stands for a line over the bound,
    whose remainder is read and dropped in bounded chunks."""
    while True:
        chunk = stream.readline(MAX_LINE_BYTES + 1)
        if not chunk:
            return
        if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
            while chunk and not chunk.endswith(b"\n"):
                chunk = stream.readline(MAX_LINE_BYTES)
            yield None
            continue
        yield chunk.rstrip(b"\r\n")


def read_stream(stream: BinaryIO, source: str, stats: ReadStats) -> Iterator[Record]:
    for number, raw in enumerate(_bounded_lines(stream), start=1):
        stats.lines += 1
        if raw is None:
            stats.skipped["too_long"] += 1
            continue
        if not raw.strip():
            stats.lines -= 1  # blank lines are not log lines
            continue
        try:
            record = parse_line(raw, source=source, line=number)
        except BadLine as exc:
            stats.skipped[exc.reason] += 1
            continue
        stats.records += 1
        yield record


@dataclass
class LogSet:
    """Every record from a set of files, sorted by time, plus read counts."""

    records: list[Record]
    stats: dict[str, ReadStats]

    @property
    def agent_records(self) -> list[Record]:
        return [r for r in self.records if r.kind == "agent"]

    @property
    def scenario_records(self) -> list[Record]:
        return [r for r in self.records if r.kind == "scenario"]

    def total_stats(self) -> ReadStats:
        total = ReadStats()
        for stats in self.stats.values():
            total.merge(stats)
        return total


def load(paths: Iterable[str | Path]) -> LogSet:
    """Read files (a directory means every *.log / *.jsonl file in it)."""
    records: list[Record] = []
    stats: dict[str, ReadStats] = {}
    for path in _expand(paths):
        file_stats = stats.setdefault(str(path), ReadStats())
        with open(path, "rb") as stream:
            records.extend(read_stream(stream, str(path), file_stats))
    # A stable sort keeps each file's own order for equal timestamps.
    records.sort(key=lambda r: r.time)
    return LogSet(records=records, stats=stats)


def _expand(paths: Iterable[str | Path]) -> Iterator[Path]:
    for item in paths:
        path = Path(item)
        if path.is_dir():
            yield from sorted(p for p in path.iterdir() if p.suffix in (".log", ".jsonl"))
        else:
            yield path
