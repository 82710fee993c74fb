"""Replica operations between agents on the "kv" stream channel.

Rules: a request is a CBOR map {"op": put|get|scan, ...}; a response is a CBOR
map too. Everything decoded is untrusted: types, sizes and counts are checked
here and a violation raises KvOpError, which the handler answers as
{"err": reason} instead of applying anything. A replica that is not yet filled
with its partition's data answers gets with "pend": true (the coordinator merges
the answer but does not count it toward the read quorum); a replica that refuses
a write says why in "err" (e.g. LEAVING, or a storage reason); a leaving replica
answers gets with "pend" and "lv" both true.
  put   {"op": "put", "r": record}            -> {"ok": true, "changed": bool,
                                                "newer": [wall, counter]}  (newer: the
                                                replica holds a version above the record,
                                                or refused it below its purge watermark)
  get   {"op": "get", "k": key}               -> {"r": record | null, "pend": bool, "lv": bool}
  scan  {"op": "scan", "k": prefix, "n": max, "a": after (optional)}
                                              -> {"ls": [[key, size, wall, counter, node,
                                                          deleted], ...]}  (no values; keys
                                                 above `after`, in key order)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import cbor2

from gossip.core.store.cbormap import loads_map
from gossip.core.store.hlc import Timestamp
from gossip.core.store.record import (
    MAX_KEY_BYTES,
    Record,
    RecordError,
    record_from_wire,
    record_to_wire,
)

MAX_SCAN = 10_000
LEAVING = "leaving"
"""The refusal of a replica that is handing its partitions over before it leaves."""


class KvOpError(ValueError):
    pass


@dataclass(frozen=True)
class KvOp:
    op: str
    record: Record | None = None
    key: str = ""
    limit: int = 0
    after: str = ""
    """scan only: start above this key (a page's continuation)."""


def encode_op(op: KvOp) -> bytes:
    if op.op == "put":
        assert op.record is not None
        return cbor2.dumps({"op": "put", "r": record_to_wire(op.record)})
    if op.op == "get":
        return cbor2.dumps({"op": "get", "k": op.key})
    scan: dict[str, Any] = {"op": "scan", "k": op.key, "n": op.limit}
    if op.after:
        scan["a"] = op.after
    return cbor2.dumps(scan)


def _loads(payload: bytes) -> dict[str, Any]:
    return loads_map(payload, KvOpError)


def _record(item: Any) -> Record:
    try:
        return record_from_wire(item)
    except RecordError as exc:
        raise KvOpError(str(exc)) from exc


def decode_op(payload: bytes) -> KvOp:
    raw = _loads(payload)
    op = raw.get("op")
    if op == "put":
        return KvOp("put", record=_record(raw.get("r")))
    key = raw.get("k")
    if not isinstance(key, str) or len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise KvOpError("bad key")
    if op == "get":
        return KvOp("get", key=key)
    if op == "scan":
        limit = raw.get("n")
        if type(limit) is not int or not 0 < limit <= MAX_SCAN:
            raise KvOpError("bad scan limit")
        after = raw.get("a", "")
        if not isinstance(after, str) or len(after.encode("utf-8")) > MAX_KEY_BYTES:
            raise KvOpError("bad scan start")
        return KvOp("scan", key=key, limit=limit, after=after)
    raise KvOpError("unknown op")


def encode_result(**fields: Any) -> bytes:
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if isinstance(value, Record):
            out[name] = record_to_wire(value)
        else:
            out[name] = value
    return cbor2.dumps(out)


def decode_put_result(payload: bytes) -> bool:
    return decode_put_answer(payload)[0]


class PutAnswer(NamedTuple):
    changed: bool
    newer: tuple[int, int] | None
    """The (wall, counter) of a newer version that hides the write, if any."""


def decode_put_answer(payload: bytes) -> PutAnswer:
    """A replica's acknowledgement of a put; KvOpError for a refusal or garbage."""
    raw = _loads(payload)
    if "err" in raw:
        raise KvOpError(str(raw["err"])[:200])
    if raw.get("ok") is not True:
        raise KvOpError("put not acknowledged")
    newer = raw.get("newer")
    if newer is None:
        return PutAnswer(bool(raw.get("changed")), None)
    if not isinstance(newer, list) or len(newer) != 2:
        raise KvOpError("bad newer version")
    try:
        ts = Timestamp(newer[0], newer[1], "-") if all(type(v) is int for v in newer) else None
    except ValueError:
        ts = None
    if ts is None:
        raise KvOpError("bad newer version")
    return PutAnswer(bool(raw.get("changed")), (ts.wall, ts.counter))


class GetAnswer(NamedTuple):
    record: Record | None
    pending: bool
    """The replica is not yet filled: merge its record, do not count it."""
    leaving: bool
    """The replica is handing its partitions over: ask the ones that replace it too."""


def decode_get_result(payload: bytes) -> Record | None:
    return decode_get_answer(payload).record


def decode_get_answer(payload: bytes) -> GetAnswer:
    raw = _loads(payload)
    if "err" in raw:
        raise KvOpError(str(raw["err"])[:200])
    item = raw.get("r")
    record = None if item is None else _record(item)
    return GetAnswer(record, raw.get("pend") is True, raw.get("lv") is True)


class Listed(NamedTuple):
    """One key in a listing: what a scan returns instead of the record."""

    key: str
    size: int
    version: Timestamp
    deleted: bool

    @classmethod
    def of(cls, r: Record) -> Listed:
        return cls(r.key, len(r.value or b""), r.version, r.deleted)

    def order_key(self) -> tuple[Timestamp, bool]:
        return self.version, self.deleted


def encode_listing(items: list[Listed]) -> bytes:
    wire = [
        [i.key, i.size, i.version.wall, i.version.counter, i.version.node, i.deleted] for i in items
    ]
    return cbor2.dumps({"ls": wire})


def decode_scan_result(payload: bytes) -> list[Listed]:
    raw = _loads(payload)
    if "err" in raw:
        raise KvOpError(str(raw["err"])[:200])
    items = raw.get("ls")
    if not isinstance(items, list) or len(items) > MAX_SCAN:
        raise KvOpError("bad scan result")
    out: list[Listed] = []
    for item in items:
        if not isinstance(item, list) or len(item) != 6:
            raise KvOpError("bad listing item")
        key, size, wall, counter, node, deleted = item
        record = _record([key, None, wall, counter, node])  # checks key and version
        if type(size) is not int or size < 0 or not isinstance(deleted, bool):
            raise KvOpError("bad listing item")
        out.append(Listed(record.key, size, record.version, deleted))
    return out
