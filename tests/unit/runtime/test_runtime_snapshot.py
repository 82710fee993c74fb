"""The member snapshot: alive members' addresses, bounded, written only when changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from gossip.core.types import MemberInfo, MemberState
from gossip.runtime import snapshot
from gossip.runtime.snapshot import MemberSnapshot, SnapshotError


def _m(name: str, port: int, state: MemberState = MemberState.ALIVE) -> MemberInfo:
    return MemberInfo(name, ("127.0.0.1", port), state, 1, {}, 0.0)


def test_the_alive_members_but_this_one_are_saved_and_read_back(tmp_path: Path) -> None:
    members = [
        _m("me", 1),
        _m("b", 2),
        _m("c", 3, MemberState.DEAD),
        MemberInfo("d", ("::1", 4), MemberState.ALIVE, 1, {}, 0.0),
    ]
    snap = MemberSnapshot(tmp_path)
    assert snap.save(members, "me")
    assert not snap.save(members, "me")  # unchanged: not written again
    assert MemberSnapshot(tmp_path).addresses() == ([("127.0.0.1", 2), ("::1", 4)], "")


def test_an_agent_alone_keeps_the_snapshot_it_has(tmp_path: Path) -> None:
    snap = MemberSnapshot(tmp_path)
    snap.save([_m("me", 1), _m("b", 2)], "me")
    assert not snap.save([_m("me", 1)], "me")
    assert MemberSnapshot(tmp_path).addresses()[0] == [("127.0.0.1", 2)]


def test_malformed_entries_are_skipped_and_a_malformed_file_is_reported(tmp_path: Path) -> None:
    raw = (
        b'{"members": [{"name": "a", "address": "127.0.0.1:5"}, {"name": "b"}, 7,'
        b' {"name": "c", "address": "127.0.0.1:0"}, {"name": "d", "address": "[::1"},'
        b' {"name": "", "address": "127.0.0.1:6"}]}'
    )
    assert snapshot.decode(raw) == [("a", ("127.0.0.1", 5))]
    (tmp_path / snapshot.FILE_NAME).write_bytes(b"not json")
    found, problem = MemberSnapshot(tmp_path).addresses()
    assert found == [] and "not JSON" in problem


def test_at_most_max_members_are_saved() -> None:
    many = [_m(f"n{i:04}", 1000 + i) for i in range(snapshot.MAX_MEMBERS + 10)]
    assert len(snapshot.decode(snapshot.encode(many, "me"))) == snapshot.MAX_MEMBERS


@pytest.mark.parametrize(
    "raw", [b"", b"[]", b'{"members": 1}', b"[" * 100_000, b" " * (snapshot.MAX_FILE_BYTES + 1)]
)
def test_the_file_decoder_fails_only_with_its_typed_error(raw: bytes) -> None:
    with pytest.raises(SnapshotError):
        snapshot.decode(raw)
