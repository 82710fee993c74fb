"""Tokens issued before a restart: kept in the data directory, given back to the core."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio
import trio.testing

from gossip.core.types import MemberState
from gossip.runtime.ownership.issued import FILE_NAME, IssuedError, IssuedTokens
from gossip.runtime.ownership.service import OwnershipService
from tests.unit.ownership.test_ownership_service import ITEMS, FakeHost

HOUR_MS = 3_600_000


def test_recorded_tokens_come_back_and_only_ever_go_up(tmp_path: Path) -> None:
    kept = IssuedTokens(tmp_path)
    assert kept.load() == {}
    assert kept.record({"x": 10, "y": 20}) and kept.record({"x": 30, "y": 5})
    kept.close()
    again = IssuedTokens(tmp_path)
    assert again.load() == {"x": 30, "y": 20}, "a lower token never replaces a higher one"
    again.close()


def test_rows_that_are_not_an_item_and_a_token_are_skipped(tmp_path: Path) -> None:
    IssuedTokens(tmp_path).load()
    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        db.executemany(
            "INSERT INTO issued VALUES (?, ?)",
            [
                ("ok", 5),
                ("", 6),
                ("neg", -3),
                ("real", 2.5),
                ("zero", 0),
                ("text", "seven"),
                ("x" * 300, 8),
            ],
        )
        db.execute("INSERT INTO issued VALUES (CAST(X'FF' AS TEXT), 9)")
    assert IssuedTokens(tmp_path).load() == {"ok": 5}


def test_a_file_sqlite_cannot_read_stops_the_start_with_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).write_bytes(b"not a database" * 100)
    with pytest.raises(IssuedError, match="fencing tokens"):
        IssuedTokens(tmp_path).load()


def test_a_failed_record_is_kept_and_saved_with_the_next(tmp_path: Path) -> None:
    kept = IssuedTokens(tmp_path)
    kept.load()
    with sqlite3.connect(tmp_path / FILE_NAME) as other:
        other.execute("BEGIN EXCLUSIVE")  # the file is locked: the write fails at once
        kept._db.execute("PRAGMA busy_timeout = 0")  # type: ignore[union-attr]
        assert not kept.record({"x": 10})
        other.rollback()
    assert kept.record({"y": 20})
    kept.close()
    assert IssuedTokens(tmp_path).load() == {"x": 10, "y": 20}


def test_without_a_data_directory_nothing_is_kept() -> None:
    kept = IssuedTokens(None)
    assert kept.load() == {} and kept.record({"x": 1}) and kept.load() == {}


class SteppedHost(FakeHost):
    """A host whose wall clock follows trio's clock, `offset_ms` off."""

    def __init__(self, data_dir: Path, offset_ms: int) -> None:
        super().__init__("a", {"a": MemberState.ALIVE}, data_dir)
        self.offset_ms = offset_ms

    def wall_ms(self) -> int:
        return 1_767_225_600_000 + int(trio.current_time() * 1000) + self.offset_ms


async def held_after_a_start(data_dir: Path, offset_ms: int = 0) -> dict[str, int]:
    host = SteppedHost(data_dir, offset_ms)
    svc = OwnershipService(items=ITEMS, settle_time=0.5, coalesce_time=0.1, partitions=1 << 10)
    svc.attach(host)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(svc.run)
        await trio.sleep(2.0)
        held = svc.held()
        nursery.cancel_scope.cancel()  # kill -9: no leave, memory gone
    return held


async def test_a_restart_with_the_clock_stepped_back_issues_tokens_above_the_earlier_ones(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    first = await held_after_a_start(tmp_path)
    assert set(first) == set(ITEMS)
    again = await held_after_a_start(tmp_path, offset_ms=-HOUR_MS)
    assert set(again) == set(ITEMS)
    assert min(again.values()) > max(first.values())
