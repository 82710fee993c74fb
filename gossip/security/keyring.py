"""The cluster keyring: one primary key that encrypts, more that still decrypt.

Rules:
- Keys are raw AES keys of 16, 24 or 32 bytes; on the command line and on disk
  they are written in standard base64.
- The first key is the primary one; `install` adds a key that only decrypts,
  `use` makes an installed key primary, `remove` drops a key that is not primary.
- Every key has a public 4-byte id (a hash of the key) that travels in each
  packet so the receiver tries one key, not all of them.
- The keyring holds no I/O; persistence lives in `keyfile`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from collections.abc import Iterable

KEY_SIZES = (16, 24, 32)
KEY_ID_SIZE = 4
MAX_KEYS = 16
"""A keyring is small by design; the bound keeps decryption attempts cheap."""


class KeyringError(ValueError):
    """An invalid key or an operation the keyring refuses (with the reason)."""


def generate_key(size: int = 32) -> bytes:
    if size not in KEY_SIZES:
        raise KeyringError(f"key size must be one of {KEY_SIZES}, not {size}")
    return secrets.token_bytes(size)


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def decode_key(text: str) -> bytes:
    """Parse a base64 key, raising KeyringError with a clear reason."""
    text = text.strip()
    if len(text) > 64:
        raise KeyringError("key is too long: expected base64 of 16, 24 or 32 bytes")
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise KeyringError("key is not valid base64") from None
    check_key(key)
    return key


def check_key(key: bytes) -> None:
    if len(key) not in KEY_SIZES:
        raise KeyringError(f"key must be 16, 24 or 32 bytes, got {len(key)}")


def key_id(key: bytes) -> bytes:
    """A short public fingerprint of a key (not secret: it appears in every packet)."""
    return hashlib.sha256(b"gossip key id\x00" + key).digest()[:KEY_ID_SIZE]


def key_label(key: bytes) -> str:
    """How a key is named in answers and logs: its id in hex, never the key."""
    return key_id(key).hex()


class Keyring:
    """An ordered set of keys whose first member is the primary (encrypting) key."""

    def __init__(self, keys: Iterable[bytes], primary: bytes | None = None) -> None:
        ordered: list[bytes] = []
        for key in keys:
            check_key(key)
            if key not in ordered:
                ordered.append(key)
        if primary is not None:
            check_key(primary)
            if primary in ordered:
                ordered.remove(primary)
            ordered.insert(0, primary)
        if not ordered:
            raise KeyringError("a keyring needs at least one key")
        if len(ordered) > MAX_KEYS:
            raise KeyringError(f"a keyring holds at most {MAX_KEYS} keys")
        self._keys = ordered
        self._by_id: dict[bytes, list[bytes]] = {}
        self.version = 0
        """Bumped on every change, so users can drop cached key material."""
        self._reindex()

    def _reindex(self) -> None:
        self._by_id = {}
        for key in self._keys:
            self._by_id.setdefault(key_id(key), []).append(key)
        self.version += 1

    @property
    def primary(self) -> bytes:
        return self._keys[0]

    def all_keys(self) -> list[bytes]:
        """All keys, primary first."""
        return list(self._keys)

    def lookup(self, kid: bytes) -> list[bytes]:
        """The keys whose id is `kid` (almost always zero or one)."""
        return self._by_id.get(kid, [])

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def install(self, key: bytes) -> bool:
        """Add a decrypt-only key; returns False when it was already installed."""
        check_key(key)
        if key in self._keys:
            return False
        if len(self._keys) >= MAX_KEYS:
            raise KeyringError(f"a keyring holds at most {MAX_KEYS} keys")
        self._keys.append(key)
        self._reindex()
        return True

    def use(self, key: bytes) -> bool:
        """Make an installed key primary; returns False when it already was."""
        if key not in self._keys:
            raise KeyringError("key is not installed; install it first")
        if self._keys[0] == key:
            return False
        self._keys.remove(key)
        self._keys.insert(0, key)
        self._reindex()
        return True

    def remove(self, key: bytes) -> bool:
        """Drop a non-primary key; returns False when it was not installed."""
        if key not in self._keys:
            return False
        if self._keys[0] == key:
            raise KeyringError("cannot remove the primary key; use another key first")
        self._keys.remove(key)
        self._reindex()
        return True

    def describe(self) -> dict[str, object]:
        """A JSON-ready view naming keys by id only."""
        return {
            "primary": key_label(self.primary),
            "keys": [key_label(k) for k in self._keys],
        }
