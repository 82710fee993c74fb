"""Replica operations on the kv channel: round trips and strict decoding."""

import contextlib

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gossip.core.store.hlc import Timestamp
from gossip.core.store.record import Record
from gossip.core.store.replica_ops import (
    KvOp,
    KvOpError,
    Listed,
    decode_get_result,
    decode_op,
    decode_put_result,
    decode_scan_result,
    encode_listing,
    encode_op,
    encode_result,
)

R = Record("k", b"v", Timestamp(5, 1, "n"))


def test_operations_round_trip() -> None:
    for op in (KvOp("put", record=R), KvOp("get", key="k"), KvOp("scan", key="p/", limit=10)):
        assert decode_op(encode_op(op)) == op
    assert decode_put_result(encode_result(ok=True, changed=True))
    assert decode_get_result(encode_result(r=R)) == R
    assert decode_get_result(encode_result(r=None)) is None
    listing = [Listed.of(R), Listed.of(Record("gone", None, Timestamp(6, 0, "n")))]
    assert decode_scan_result(encode_listing(listing)) == listing


@pytest.mark.parametrize(
    "raw",
    [
        {"op": "put", "r": ["k", 3, 1, 0, "n"]},
        {"op": "get", "k": 7},
        {"op": "get", "k": "x" * 600},
        {"op": "scan", "k": "", "n": 0},
        {"op": "scan", "k": "", "n": 10**6},
        {"op": "drop"},
        [],
    ],
)
def test_malformed_operations_are_refused(raw: object) -> None:
    with pytest.raises(KvOpError):
        decode_op(cbor2.dumps(raw))


def test_a_replica_error_or_bad_answer_is_an_error_for_the_coordinator() -> None:
    with pytest.raises(KvOpError, match="disk full"):
        decode_put_result(encode_result(err="disk full"))
    with pytest.raises(KvOpError):
        decode_put_result(encode_result(ok=False))
    with pytest.raises(KvOpError):
        decode_scan_result(cbor2.dumps({"ls": [["k", -1, 1, 0, "n", False]]}))


@given(st.binary(max_size=120))
def test_garbage_raises_only_the_operation_error(payload: bytes) -> None:
    for decode in (decode_op, decode_get_result, decode_put_result, decode_scan_result):
        with contextlib.suppress(KvOpError):
            decode(payload)  # type: ignore[operator]
