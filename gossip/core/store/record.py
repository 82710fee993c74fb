"""Versioned key-value records and the last-writer-wins merge.

Rules: a record is (key, value, version); a delete is a record whose value is
None (a tombstone), so it travels and merges like any write. `merge` keeps the
record with the greatest `order_key`: the version first (hybrid logical clock,
node name as the final tie-break), then tombstone over value, then the larger
value, so merging is commutative, associative and idempotent even for two
records that (impossibly, for correct clocks) share a version. Concurrent
writes to one key therefore keep the later one; the other is lost.

Each record also has a fixed-size summary (an `Entry`: key hash, packed
version, tag) that anti-entropy exchanges instead of the record itself. The
tag is a 64-bit digest of the writer's name, the tombstone flag and the value,
so two writes of one key in one millisecond by two writers have different
entries (a 32-bit tag let such a pair collide and look in sync for ever).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import NamedTuple

from gossip.core.store.hlc import Timestamp

MAX_KEY_BYTES = 512
MAX_VALUE_BYTES = 1 << 20
MAX_NODE_BYTES = 128

_KEY_PERSON = b"gossip-kv-key"
_TAG_PERSON = b"gossip-kv-tag"
_FP_PERSON = b"gossip-kv-fp"
_ENTRY = struct.Struct(">QQQ")


class RecordError(ValueError):
    """A key, value or record that breaks the documented limits."""


def validate_key(key: str) -> bytes:
    raw = key.encode("utf-8")
    if not raw:
        raise RecordError("empty key")
    if len(raw) > MAX_KEY_BYTES:
        raise RecordError(f"key is {len(raw)} bytes, limit {MAX_KEY_BYTES}")
    return raw


def validate_value(value: bytes) -> None:
    if len(value) > MAX_VALUE_BYTES:
        raise RecordError(f"value is {len(value)} bytes, limit {MAX_VALUE_BYTES}")


def key_hash(key: str) -> int:
    """64-bit position of a key in the Merkle tree (independent of partitioning)."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8, person=_KEY_PERSON).digest()
    return int.from_bytes(digest, "big")


class Entry(NamedTuple):
    """What anti-entropy knows of a record without its body: 24 bytes on the wire
    (the fingerprint is derived, kept only so it is computed once)."""

    khash: int
    version: int
    """Timestamp.packed: (wall, counter)."""
    tag: int
    """64 bits over (writer node, tombstone flag, value): tells same-version records apart."""
    fp: int
    """64-bit hash of the three fields above; a tree node sums its entries' fp."""

    def pack(self) -> bytes:
        return _ENTRY.pack(self.khash, self.version, self.tag)

    @property
    def fingerprint(self) -> int:
        return self.fp


def make_entry(khash: int, version: int, tag: int) -> Entry:
    packed = _ENTRY.pack(khash, version, tag)
    digest = hashlib.blake2b(packed, digest_size=8, person=_FP_PERSON).digest()
    return Entry(khash, version, tag, int.from_bytes(digest, "big"))


ENTRY_SIZE = _ENTRY.size
NO_FP = -1


def unpack_entries(blob: bytes) -> list[Entry]:
    """Entries from the wire. Their fp is left as NO_FP: a peer's entries are only
    compared with ours, never summed into a tree."""
    if len(blob) % ENTRY_SIZE:
        raise RecordError("entry list length is not a multiple of the entry size")
    return [Entry(k, v, t, NO_FP) for k, v, t in _ENTRY.iter_unpack(blob)]


@dataclass(frozen=True, slots=True)
class Record:
    key: str
    value: bytes | None
    """None marks a tombstone."""
    version: Timestamp

    @property
    def deleted(self) -> bool:
        return self.value is None

    def order_key(self) -> tuple[Timestamp, bool, bytes]:
        return (self.version, self.value is None, self.value or b"")

    def entry(self) -> Entry:
        return make_entry(key_hash(self.key), self.version.packed, self._tag())

    def _tag(self) -> int:
        h = hashlib.blake2b(digest_size=8, person=_TAG_PERSON)
        node = self.version.node.encode("utf-8")
        h.update(len(node).to_bytes(2, "big") + node)
        h.update(b"\x00" if self.value is None else b"\x01" + self.value)
        return int.from_bytes(h.digest(), "big")

    def size(self) -> int:
        """Approximate bytes on the wire, for message budgets."""
        return len(self.key) + len(self.value or b"") + len(self.version.node) + 24


def merge(a: Record | None, b: Record | None) -> Record | None:
    """Last writer wins. Commutative, associative and idempotent."""
    if a is None:
        return b
    if b is None:
        return a
    return b if b.order_key() > a.order_key() else a


def wins(candidate: Record, current: Record | None) -> bool:
    """Whether merging `candidate` into `current` changes it."""
    return current is None or candidate.order_key() > current.order_key()


def record_to_wire(r: Record) -> list[object]:
    return [r.key, r.value, r.version.wall, r.version.counter, r.version.node]


def record_from_wire(item: object) -> Record:
    """Bounded, typed decoding of an untrusted record; raises RecordError."""
    if not isinstance(item, list) or len(item) != 5:
        raise RecordError("record is not a 5-item list")
    key, value, wall, counter, node = item
    if not isinstance(key, str) or not isinstance(node, str):
        raise RecordError("record key and node must be text")
    if value is not None and not isinstance(value, bytes):
        raise RecordError("record value must be bytes or null")
    if type(wall) is not int or type(counter) is not int:
        raise RecordError("record version must be integers")
    validate_key(key)
    if value is not None:
        validate_value(value)
    if not node or len(node.encode("utf-8")) > MAX_NODE_BYTES:
        raise RecordError("bad node name in version")
    try:
        version = Timestamp(wall, counter, node)
    except ValueError as exc:
        raise RecordError(str(exc)) from exc
    return Record(key, value, version)
