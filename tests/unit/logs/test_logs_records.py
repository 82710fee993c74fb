"""Reading log lines: bounded, typed, and bad lines skipped and counted."""

from __future__ import annotations

import io
import json

import pytest

from gossip.logs.records import MAX_LINE_BYTES, BadLine, ReadStats, parse_line, read_stream
from tests.unit.logs.logs_fixtures import T0, line


def test_an_agent_line_becomes_a_record_with_epoch_time() -> None:
    record = parse_line(line(1.5, "member_failed", "n1", member="n3", state="dead").encode())
    assert record.kind == "agent"
    assert record.time == pytest.approx(T0 + 1.5)
    assert (record.node, record.member, record.event) == ("n1", "n3", "member_failed")
    assert record.get_str("state") == "dead"
    assert record.get_num("state") is None


def test_a_scenario_line_needs_no_node() -> None:
    record = parse_line(line(2, "fault_injected", action="kill", target="n3").encode())
    assert record.kind == "scenario"
    assert record.node is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json at all", "not_json"),
        (b"[1, 2, 3]", "not_object"),
        (b'{"event": "agent_started", "node": "n1"}', "no_timestamp"),
        (b'{"timestamp": "yesterday", "event": "x", "node": "n1"}', "bad_timestamp"),
        (b'{"timestamp": "2026-01-01T00:00:00Z", "node": "n1"}', "no_event"),
        (b'{"timestamp": "2026-01-01T00:00:00Z", "event": "member_failed"}', "no_node"),
        (b'{"timestamp": "2026-01-01T00:00:00Z", "event": "x", "node": 7}', "bad_node"),
        (b"[" * 5000 + b"]" * 5000, "not_json"),  # too deep for the parser
        (b"[" * 60000, "not_json"),
    ],
    ids=lambda v: v[:24] if isinstance(v, bytes) else v,
)
def test_bad_lines_raise_with_a_stable_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(BadLine) as info:
        parse_line(raw)
    assert info.value.reason == reason


def test_a_timestamp_without_zone_is_utc() -> None:
    a = parse_line(b'{"timestamp": "2026-01-01T00:00:00", "event": "x", "node": "n"}')
    b = parse_line(b'{"timestamp": "2026-01-01T00:00:00+00:00", "event": "x", "node": "n"}')
    assert a.time == b.time


def test_reading_a_stream_skips_and_counts_bad_lines_including_over_long_ones() -> None:
    good = line(0, "agent_started", "n1").encode()
    huge = json.dumps(
        {
            "timestamp": "2026-01-01T00:00:00Z",
            "event": "x",
            "node": "n",
            "pad": "y" * MAX_LINE_BYTES,
        }
    )
    data = b"\n".join([good, b"garbage", huge.encode(), b"", good, b"{}"]) + b"\n"
    stats = ReadStats()
    records = list(read_stream(io.BytesIO(data), "mem", stats))
    assert len(records) == 2
    assert [r.line for r in records] == [1, 5]
    assert stats.lines == 5
    assert stats.records == 2
    assert stats.skipped == {"not_json": 1, "too_long": 1, "no_timestamp": 1}


def test_a_final_line_without_newline_is_read() -> None:
    stats = ReadStats()
    data = line(0, "agent_started", "n1").encode()
    assert len(list(read_stream(io.BytesIO(data), "mem", stats))) == 1
