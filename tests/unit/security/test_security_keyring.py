"""The keyring, its file under --data-dir, and the replay window."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gossip.security.keyfile import KeyfileError, keyring_path, load_keyring, save_keyring
from gossip.security.keyring import (
    MAX_KEYS,
    Keyring,
    KeyringError,
    decode_key,
    encode_key,
    generate_key,
    key_id,
)
from gossip.security.replay import ReplayWindow

K1, K2, K3 = (bytes([i]) * 32 for i in (1, 2, 3))


def test_first_key_is_primary_and_duplicates_collapse() -> None:
    ring = Keyring([K1, K2, K1])
    assert ring.primary == K1
    assert ring.all_keys() == [K1, K2]


def test_explicit_primary_moves_to_front() -> None:
    assert Keyring([K1, K2], primary=K2).all_keys() == [K2, K1]


def test_install_use_remove_cycle() -> None:
    ring = Keyring([K1])
    assert ring.install(K2) is True
    assert ring.install(K2) is False
    assert ring.primary == K1
    assert ring.use(K2) is True
    assert ring.primary == K2
    assert ring.remove(K1) is True
    assert ring.remove(K1) is False
    assert ring.all_keys() == [K2]


def test_primary_cannot_be_removed_and_unknown_key_cannot_be_used() -> None:
    ring = Keyring([K1])
    with pytest.raises(KeyringError, match="primary"):
        ring.remove(K1)
    with pytest.raises(KeyringError, match="install it first"):
        ring.use(K2)


def test_version_changes_on_every_change_only() -> None:
    ring = Keyring([K1])
    v = ring.version
    ring.install(K1)
    assert ring.version == v
    ring.install(K2)
    assert ring.version > v


def test_lookup_by_public_id() -> None:
    ring = Keyring([K1, K2])
    assert ring.lookup(key_id(K2)) == [K2]
    assert ring.lookup(b"\x00\x00\x00\x00") == []


def test_keyring_size_is_bounded() -> None:
    ring = Keyring([bytes([i]) * 16 for i in range(MAX_KEYS)])
    with pytest.raises(KeyringError, match="at most"):
        ring.install(K1)


@pytest.mark.parametrize(
    ("text", "why"),
    [("not base64!", "base64"), (encode_key(b"x" * 20), "16, 24 or 32"), ("A" * 200, "too long")],
)
def test_bad_keys_are_refused_with_a_reason(text: str, why: str) -> None:
    with pytest.raises(KeyringError, match=why):
        decode_key(text)


def test_generated_keys_round_trip_through_base64() -> None:
    for size in (16, 24, 32):
        key = generate_key(size)
        assert decode_key(encode_key(key)) == key
    with pytest.raises(KeyringError):
        generate_key(8)


def test_keyfile_round_trip_is_private(tmp_path: Path) -> None:
    path = keyring_path(tmp_path)
    assert load_keyring(path) is None
    save_keyring(path, Keyring([K1, K2], primary=K2))
    loaded = load_keyring(path)
    assert loaded is not None
    assert loaded.all_keys() == [K2, K1]
    assert os.stat(path).st_mode & 0o077 == 0


@pytest.mark.parametrize(
    "content",
    [
        b"{",
        b"[]",
        b'{"primary": 1, "keys": []}',
        json.dumps({"primary": encode_key(K1), "keys": [3]}).encode(),
        json.dumps({"primary": "short", "keys": []}).encode(),
        b" " * 20000,
    ],
)
def test_bad_keyfiles_raise_a_clear_error(tmp_path: Path, content: bytes) -> None:
    path = keyring_path(tmp_path)
    path.write_bytes(content)
    with pytest.raises(KeyfileError, match=str(path)):
        load_keyring(path)


def test_replay_window_accepts_each_counter_once_and_in_any_order() -> None:
    window = ReplayWindow(8)
    for counter in (5, 3, 7, 4):
        assert window.check(counter) is None
        window.record(counter)
    assert window.check(3) == "replayed"
    assert window.check(6) is None
    assert window.check(0) is None  # 7 - 0 < 8: still inside the window
    window.record(100)
    assert window.check(92) == "stale"
    assert window.check(93) is None
    assert window.check(100) == "replayed"
