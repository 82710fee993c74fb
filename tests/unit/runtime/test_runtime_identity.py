"""The persisted identity survives restarts and refuses corrupt files."""

from __future__ import annotations

from pathlib import Path

import pytest

from gossip.runtime.identity import (
    FILE_NAME,
    IdentityError,
    IdentityKeeper,
    load_identity,
    save_identity,
)


def test_a_fresh_directory_gives_a_new_identity_at_zero(tmp_path: Path) -> None:
    ident = load_identity(tmp_path, "a")
    assert ident.incarnation == 0
    assert len(ident.node_id) == 32


def test_a_saved_identity_loads_back_unchanged(tmp_path: Path) -> None:
    ident = load_identity(tmp_path, "a").with_incarnation(41)
    save_identity(tmp_path / "sub", ident)
    assert load_identity(tmp_path / "sub", "a") == ident
    assert not (tmp_path / "sub" / (FILE_NAME + ".tmp")).exists()


@pytest.mark.parametrize("content", [b"{", b'{"node_id": 5, "incarnation": 1}', b"x" * 5000])
def test_a_corrupt_identity_is_an_error_not_a_silent_reset(tmp_path: Path, content: bytes) -> None:
    (tmp_path / FILE_NAME).write_bytes(content)
    with pytest.raises(IdentityError):
        load_identity(tmp_path, "a")


def test_each_start_begins_above_the_last_saved_incarnation(tmp_path: Path) -> None:
    first = IdentityKeeper(tmp_path, "a")
    assert first.identity.incarnation == 1
    first.incarnation_changed(7)
    first.incarnation_changed(3)  # never goes down
    assert load_identity(tmp_path, "a").incarnation == 7
    second = IdentityKeeper(tmp_path, "a")
    assert second.identity.incarnation == 8
    assert second.identity.node_id == first.identity.node_id


def test_without_a_data_dir_the_identity_is_fresh_and_unsaved(tmp_path: Path) -> None:
    keeper = IdentityKeeper(None, "a")
    keeper.incarnation_changed(5)
    assert keeper.identity.incarnation == 0
    assert list(tmp_path.iterdir()) == []
