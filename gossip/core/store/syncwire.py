"""The anti-entropy message and its compact CBOR encoding.

Rules: one message type flows both ways. Everything read from the wire is
untrusted: the payload size is bounded by the caller, every list length is
bounded here, tree coordinates are range-checked and every blob length must
match its layout; any violation raises SyncWireError and nothing is applied.

Layout (a CBOR map with one-letter keys; absent keys mean empty):
  p  partition number
  r  [fingerprint, count] of the sender's root (first message of a session)
  n  expansions: [[level, prefix, children]]; children = u16 bitmap of the
     non-empty children, then per set bit u64 fingerprint + uvarint count
  e  entry lists: [[level, prefix, 20-byte entries sorted by key hash]]
  d  records: [[key, value|null, wall_ms, counter, node]]
  w  wanted key hashes, packed u64s
  x  error token (e.g. not_replica)
  i  the sender's copy: [node name, data generation, purge watermark, sequence
     number when the message was built] (the last one absent from older builds)
  f  the sender's purge floor and purge-log digest, [floor, digest]
     (gossip.core.store.purgelog); absent: the floor is the watermark
  j  the receiver's purge floor the sender judged this message's records by
     (rule 2 of gossip.core.store.tombstone_gc); absent: it did not judge them

A roots check batches the first step for many partitions shared with one
peer: {"from": name, "roots": [[partition, fingerprint, count, generation,
watermark], ...]} is answered with {"from": name, "differ": [partition, ...],
"copies": [[partition, generation, watermark], ...], "pending": [...],
"holds": [...]} (of the ones asked about: those whose roots differ, the
responder's copy of each, those it does not count for reads, being filled with
them or not replicating them, and those it holds any copy of), and only the
differing partitions get a full session. Both maps may carry "q", the
sender's sequence number when it took its roots (absent from older builds).
Equal roots are what tombstone GC's proofs are made of
(gossip.core.store.tombstone_gc). Both maps may carry "t",
the sender's store-clock reading in milliseconds, which is how replicas measure
their clock offsets (gossip.core.store.clocksync); a reading that is not a
plausible wall time is ignored. Both may carry "f": [[partition, purge floor,
purge-log digest], ...] for the sender's copies whose floor is below their
watermark (absent: at it, as older builds mean).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import cbor2

from gossip.core.store.cbormap import loads_map
from gossip.core.store.hlc import MAX_WALL_MS
from gossip.core.store.merkle import FANOUT, MAX_LEVEL, Summary, check_node
from gossip.core.store.record import (
    ENTRY_SIZE,
    MAX_NODE_BYTES,
    Entry,
    Record,
    RecordError,
    record_from_wire,
    record_to_wire,
    unpack_entries,
)
from gossip.core.store.tombstone_gc import PeerCopy

MAX_PARTITIONS = 1 << 16
MAX_ITEMS = 200_000
"""Per list in one message; far above what the byte budget lets a peer send."""
_U16 = struct.Struct(">H")
_U64 = struct.Struct(">Q")


class SyncWireError(ValueError):
    pass


@dataclass
class SyncMessage:
    partition: int
    root: Summary | None = None
    expansions: list[tuple[int, int, list[Summary]]] = field(default_factory=list)
    entries: list[tuple[int, int, list[Entry]]] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    wants: list[int] = field(default_factory=list)
    error: str | None = None
    sender: PeerCopy | None = None
    judged: int | None = None
    """The receiver's purge floor the sender screened this message's records by
    (rule 2), present only when it did."""

    def is_empty(self) -> bool:
        return self.root is None and not (
            self.expansions or self.entries or self.records or self.wants
        )


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def pack_children(children: list[Summary]) -> bytes:
    bitmap = 0
    body = bytearray()
    for i, (fp, count) in enumerate(children):
        if count or fp:
            bitmap |= 1 << i
            body += _U64.pack(fp) + _uvarint(count)
    return _U16.pack(bitmap) + bytes(body)


def unpack_children(blob: bytes) -> list[Summary]:
    if len(blob) < 2:
        raise SyncWireError("children blob truncated")
    (bitmap,) = _U16.unpack_from(blob)
    pos = 2
    out: list[Summary] = []
    for i in range(FANOUT):
        if not bitmap & (1 << i):
            out.append((0, 0))
            continue
        if pos + 8 > len(blob):
            raise SyncWireError("children blob truncated")
        (fp,) = _U64.unpack_from(blob, pos)
        pos += 8
        count = shift = 0
        while True:
            if pos >= len(blob) or shift > 56:
                raise SyncWireError("bad count in children blob")
            byte = blob[pos]
            pos += 1
            count |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        out.append((fp, count))
    if pos != len(blob):
        raise SyncWireError("trailing bytes in children blob")
    return out


def encode(msg: SyncMessage) -> bytes:
    out: dict[str, Any] = {"p": msg.partition}
    if msg.root is not None:
        out["r"] = list(msg.root)
    if msg.expansions:
        out["n"] = [[lv, px, pack_children(ch)] for lv, px, ch in msg.expansions]
    if msg.entries:
        out["e"] = [[lv, px, b"".join(e.pack() for e in es)] for lv, px, es in msg.entries]
    if msg.records:
        out["d"] = [record_to_wire(r) for r in msg.records]
    if msg.wants:
        out["w"] = b"".join(_U64.pack(h) for h in msg.wants)
    if msg.error:
        out["x"] = msg.error
    if msg.sender is not None:
        s = msg.sender
        out["i"] = [s.name, s.gen, s.watermark] + ([] if s.seq is None else [s.seq])
        if s.floor is not None:
            out["f"] = [s.floor, s.digest]
    if msg.judged is not None:
        out["j"] = msg.judged
    return cbor2.dumps(out)


def _list(raw: dict[str, Any], key: str) -> list[Any]:
    value = raw.get(key, [])
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        raise SyncWireError(f"field {key} is not a bounded list")
    return value


def _coords(item: Any) -> tuple[int, int, bytes]:
    if not isinstance(item, list) or len(item) != 3:
        raise SyncWireError("tree item is not [level, prefix, blob]")
    level, prefix, blob = item
    if type(level) is not int or type(prefix) is not int or not isinstance(blob, bytes):
        raise SyncWireError("tree item has wrong types")
    try:
        check_node(level, prefix)
    except ValueError as exc:
        raise SyncWireError(str(exc)) from exc
    return level, prefix, blob


def _u64(value: Any) -> int:
    if type(value) is not int or not 0 <= value < (1 << 64):
        raise SyncWireError("expected an unsigned 64-bit integer")
    return value


def decode(payload: bytes) -> SyncMessage:
    raw = _map(payload)
    partition = raw.get("p")
    if type(partition) is not int or not 0 <= partition < (1 << 32):
        raise SyncWireError("bad partition")
    msg = SyncMessage(partition)
    root = raw.get("r")
    if root is not None:
        if not isinstance(root, list) or len(root) != 2:
            raise SyncWireError("bad root")
        msg.root = (_u64(root[0]), _u64(root[1]))
    for item in _list(raw, "n"):
        level, prefix, blob = _coords(item)
        if level >= MAX_LEVEL:
            raise SyncWireError("expansion below the last level")
        msg.expansions.append((level, prefix, unpack_children(blob)))
    for item in _list(raw, "e"):
        level, prefix, blob = _coords(item)
        if len(blob) % ENTRY_SIZE:
            raise SyncWireError("entry blob length")
        msg.entries.append((level, prefix, unpack_entries(blob)))
    try:
        msg.records = [record_from_wire(r) for r in _list(raw, "d")]
    except RecordError as exc:
        raise SyncWireError(f"bad record: {exc}") from exc
    wants = raw.get("w", b"")
    if not isinstance(wants, bytes) or len(wants) % 8 or len(wants) > 8 * MAX_ITEMS:
        raise SyncWireError("bad wants")
    msg.wants = [h for (h,) in _U64.iter_unpack(wants)]
    error = raw.get("x")
    if error is not None:
        if not isinstance(error, str) or len(error) > 64:
            raise SyncWireError("bad error field")
        msg.error = error
    sender = raw.get("i")
    if sender is not None:
        if not isinstance(sender, list) or len(sender) not in (3, 4):
            raise SyncWireError("bad sender")
        seq = _u64(sender[3]) if len(sender) == 4 else None
        floor, digest = _floor(raw.get("f"))
        msg.sender = PeerCopy(
            _name(sender[0]), _u64(sender[1]), _u64(sender[2]), seq, floor, digest
        )
    judged = raw.get("j")
    msg.judged = None if judged is None else _u64(judged)
    return msg


def _floor(value: Any) -> tuple[int | None, int]:
    """A copy's [purge floor, purge-log digest] (absent: no floor, as older builds)."""
    if value is None:
        return None, 0
    if not isinstance(value, list) or len(value) != 2:
        raise SyncWireError("bad purge floor")
    return _u64(value[0]), _u64(value[1])


def _pairs(raw: dict[Any, Any], key: str, what: str) -> dict[int, tuple[int, int]]:
    """Partition -> two u64s, from a bounded list of [partition, a, b] items."""
    items = raw.get(key, [])
    if not isinstance(items, list) or len(items) > MAX_PARTITIONS:
        raise SyncWireError(f"bad {what} list")
    out: dict[int, tuple[int, int]] = {}
    for item in items:
        if not isinstance(item, list) or len(item) != 3:
            raise SyncWireError(f"bad {what} item")
        out[_partition(item[0])] = (_u64(item[1]), _u64(item[2]))
    return out


def _floors(raw: dict[Any, Any]) -> dict[int, tuple[int, int]]:
    """Partition -> (purge floor, purge-log digest) of a roots check or its answer."""
    return _pairs(raw, "f", "floors")


def _with_floors(body: dict[str, Any], floors: dict[int, tuple[int, int]]) -> dict[str, Any]:
    if floors:
        body["f"] = [[p, floor, digest] for p, (floor, digest) in sorted(floors.items())]
    return body


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value.encode("utf-8")) > MAX_NODE_BYTES:
        raise SyncWireError("bad node name")
    return value


class RootInfo(NamedTuple):
    """One partition in a roots check: the sender's root and its copy's identity."""

    root: Summary
    gen: int
    watermark: int
    floor: int | None = None
    """The copy's purge floor (None: its watermark)."""
    digest: int = 0
    """The copy's purge-log digest."""


def encode_roots(
    name: str, roots: dict[int, RootInfo], clock_ms: int | None = None, seq: int | None = None
) -> bytes:
    items = [[p, i.root[0], i.root[1], i.gen, i.watermark] for p, i in sorted(roots.items())]
    floors = {p: (i.floor, i.digest) for p, i in roots.items() if i.floor is not None}
    body = _with_floors({"from": name, "roots": items}, floors)
    return cbor2.dumps(_with_seq(_with_clock(body, clock_ms), seq))


def _with_seq(body: dict[str, Any], seq: int | None) -> dict[str, Any]:
    if seq is not None:
        body["q"] = seq
    return body


def _seq(raw: dict[Any, Any]) -> int | None:
    """The sender's sequence number in a roots check or its answer (None: absent)."""
    q = raw.get("q")
    return None if q is None else _u64(q)


def _with_clock(body: dict[str, Any], clock_ms: int | None) -> dict[str, Any]:
    if clock_ms is not None:
        body["t"] = clock_ms
    return body


def _clock(raw: dict[Any, Any]) -> int | None:
    """The sender's store-clock reading in a roots check or its answer (None: absent
    or not a plausible wall time; a reading is untrusted input, and a bad one does not
    make the message bad)."""
    t = raw.get("t")
    return t if type(t) is int and 0 <= t <= MAX_WALL_MS else None


def _partition(value: Any) -> int:
    if type(value) is not int or not 0 <= value < MAX_PARTITIONS:
        raise SyncWireError("bad partition")
    return value


class RootsCheck(NamedTuple):
    """A roots check, as its sender built it."""

    name: str
    """The sender."""
    roots: dict[int, RootInfo]
    seq: int | None = None
    """The sender's sequence number when it built the check (None: an older build)."""
    clock_ms: int | None = None
    """The sender's store-clock reading (None: absent or implausible)."""


def decode_roots(payload: bytes) -> RootsCheck:
    raw = _map(payload)
    items = raw.get("roots")
    if not isinstance(items, list) or len(items) > MAX_PARTITIONS:
        raise SyncWireError("bad roots list")
    out: dict[int, RootInfo] = {}
    for item in items:
        if not isinstance(item, list) or len(item) != 5:
            raise SyncWireError("bad roots item")
        out[_partition(item[0])] = RootInfo(
            (_u64(item[1]), _u64(item[2])), _u64(item[3]), _u64(item[4])
        )
    for p, (floor, digest) in _floors(raw).items():
        if p in out:
            out[p] = out[p]._replace(floor=floor, digest=digest)
    return RootsCheck(_name(raw.get("from")), out, _seq(raw), _clock(raw))


class RootsReply(NamedTuple):
    """A roots check's answer."""

    name: str
    """The responder."""
    differ: list[int]
    """Partitions whose roots differ."""
    copies: dict[int, tuple[int, int]]
    """Partition -> the responder's (generation, watermark)."""
    pending: list[int]
    """Partitions the responder does not count for reads (being filled, or not replicated)."""
    holds: list[int]
    """Partitions the responder holds any copy of."""
    seq: int | None = None
    """The responder's sequence number when it compared (None: an older build)."""
    clock_ms: int | None = None
    """The responder's store-clock reading (None: absent or implausible)."""
    floors: dict[int, tuple[int, int]] = {}
    """Partition -> the responder's (purge floor, purge-log digest), where the floor is
    below the watermark."""


def encode_differ(
    name: str,
    parts: list[int],
    copies: dict[int, tuple[int, int]],
    pending: list[int] | None = None,
    holds: list[int] | None = None,
    clock_ms: int | None = None,
    seq: int | None = None,
    floors: dict[int, tuple[int, int]] | None = None,
) -> bytes:
    listed = [[p, gen, mark] for p, (gen, mark) in sorted(copies.items())]
    out: dict[str, Any] = {"from": name, "differ": sorted(parts), "copies": listed}
    if pending:
        out["pending"] = sorted(pending)
    if holds:
        out["holds"] = sorted(holds)
    out = _with_floors(out, floors or {})
    return cbor2.dumps(_with_seq(_with_clock(out, clock_ms), seq))


def decode_differ(payload: bytes) -> tuple[str, list[int], dict[int, tuple[int, int]]]:
    """(responder, partitions whose roots differ, partition -> (generation, watermark))."""
    reply = decode_roots_reply(payload)
    return reply.name, reply.differ, reply.copies


def decode_roots_reply(payload: bytes) -> RootsReply:
    raw = _map(payload)
    copies = _pairs(raw, "copies", "copies")
    return RootsReply(
        _name(raw.get("from")),
        _parts(raw.get("differ"), "differ"),
        copies,
        _parts(raw.get("pending", []), "pending"),
        _parts(raw.get("holds", []), "holds"),
        _seq(raw),
        _clock(raw),
        _floors(raw),
    )


def _parts(items: Any, what: str) -> list[int]:
    if not isinstance(items, list) or len(items) > MAX_PARTITIONS:
        raise SyncWireError(f"bad {what} list")
    return [_partition(p) for p in items]


def _map(payload: bytes) -> dict[str, Any]:
    return loads_map(payload, SyncWireError)
