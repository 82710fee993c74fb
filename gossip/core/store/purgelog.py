"""Which keys' tombstones a copy of a partition purged lately, key by key.

A partition's purge watermark says only "some tombstone up to this version was
purged here"; this log says which keys, so that a record that comes back with a
returning node can be judged exactly instead of by the watermark.

Rules, per partition:
- The log holds, for each key whose tombstone this copy purged (or dropped as
  purged by a peer, rule 1 of gossip.core.store.tombstone_gc), the version of
  the newest such tombstone; every entry is above the partition's **floor** and
  not above its watermark.
- What the log vouches for: a tombstone newer than the floor whose purge this
  copy reflects is in the log. So a live record newer than the floor and not
  covered by an entry was not deleted by anything purged here.
- The floor starts at the watermark the copy had when this process first looked
  at the partition (earlier purges are known only as a watermark), rises to the
  greatest evicted version when the log is over `cap` entries (oldest out first),
  and rises to a peer's watermark when this copy adopts the peer's purges
  (equal roots) and the log cannot vouch for them: it can when the peer's entries
  above the peer's floor have the same digest as this log's entries in that range
  (then the peer's floor is what this copy takes on).
- Keys are kept as 16-byte digests, the digest of a set of entries is the XOR of
  64-bit hashes of its (key digest, version) pairs. Nothing here reads a clock or
  does I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from gossip.core.store.hlc import Timestamp

DEFAULT_CAP = 128
_PERSON = b"gossip-purges"


def key_digest(key: str) -> bytes:
    return hashlib.blake2b(key.encode("utf-8"), digest_size=16, person=_PERSON).digest()


def _entry_hash(digest: bytes, version: Timestamp) -> int:
    tail = f"{version.wall}.{version.counter}@{version.node}".encode()
    return int.from_bytes(hashlib.blake2b(digest + tail, digest_size=8).digest(), "big")


@dataclass
class _Part:
    floor: int
    entries: dict[bytes, Timestamp] = field(default_factory=dict)
    digest: int = 0
    """The digest of all entries, kept as they change."""

    def put(self, key: bytes, version: Timestamp) -> None:
        old = self.entries.get(key)
        if old is not None:
            self.digest ^= _entry_hash(key, old)
        self.entries[key] = version
        self.digest ^= _entry_hash(key, version)

    def drop_to_floor(self) -> None:
        for key in [k for k, v in self.entries.items() if v.packed <= self.floor]:
            self.digest ^= _entry_hash(key, self.entries.pop(key))


class PurgeLog:
    def __init__(self, cap: int = DEFAULT_CAP) -> None:
        self.cap = cap
        self._parts: dict[int, _Part] = {}

    def open(self, part: int, watermark: int) -> None:
        """First sight of `part` in this process: nothing below `watermark` is known."""
        if part not in self._parts:
            self._parts[part] = _Part(watermark)

    def floor(self, part: int) -> int:
        p = self._parts.get(part)
        return 0 if p is None else p.floor

    def __len__(self) -> int:
        return sum(len(p.entries) for p in self._parts.values())

    def purged(self, part: int, key: str, version: Timestamp) -> None:
        """This copy no longer holds `key`'s tombstone at `version` (purged)."""
        p = self._parts.setdefault(part, _Part(0))
        if version.packed <= p.floor:
            return
        digest = key_digest(key)
        known = p.entries.get(digest)
        if known is None or version > known:
            p.put(digest, version)
        if len(p.entries) > self.cap:
            by_age = sorted(p.entries.values())
            p.floor = max(p.floor, by_age[len(by_age) - self.cap - 1].packed)
            p.drop_to_floor()  # the oldest, and any others at the new floor

    def covering(self, part: int, key: str) -> Timestamp | None:
        """The version of `key`'s newest purged tombstone in the log, if any."""
        p = self._parts.get(part)
        return None if p is None or not p.entries else p.entries.get(key_digest(key))

    def digest(self, part: int, above: int = -1, upto: int | None = None) -> int:
        """The digest of the entries with versions in (above, upto] (default: all)."""
        p = self._parts.get(part)
        if p is None:
            return 0
        if above <= p.floor and (upto is None or all(v.packed <= upto for v in p.entries.values())):
            return p.digest  # the range holds every entry (the usual case)
        out = 0
        for d, version in p.entries.items():
            if above < version.packed and (upto is None or version.packed <= upto):
                out ^= _entry_hash(d, version)
        return out

    def adopt(self, part: int, peer_floor: int, peer_digest: int, peer_watermark: int) -> None:
        """This copy proved equal to a peer's and takes on its purges up to
        `peer_watermark`: the floor rises to the peer's floor if this log holds the
        same entries above it, else to the peer's watermark."""
        p = self._parts.setdefault(part, _Part(0))
        if peer_watermark <= p.floor:
            return
        # Below its own floor this log holds nothing, so a peer whose entries reach
        # down there cannot match; one that matches had nothing there either.
        same = self.digest(part, above=peer_floor, upto=peer_watermark) == peer_digest
        p.floor = max(p.floor, peer_floor if same else peer_watermark)
        p.drop_to_floor()

    def drop(self, part: int) -> None:
        """The copy starts again from empty: no purge behind it."""
        self._parts[part] = _Part(0)
