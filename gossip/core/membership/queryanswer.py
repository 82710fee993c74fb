"""A large query answer as it travels over a stream to the query's origin.

Rules: an answer too large for one datagram (Node.query_reply_room) goes over
a stream as the canonical CBOR array [qid, responder, payload]; the payload
is at most MAX_ANSWER_BYTES. Decoding checks the body's size before parsing
it, then every field, and refuses anything else with WireError (a reason
token): the origin counts it and carries on.
"""

from __future__ import annotations

from typing import Any

import cbor2

from gossip.core.membership.messages import QueryReply
from gossip.core.membership.wireschema import MAX_UINT, WireError

MAX_ANSWER_BYTES = 64 * 1024
"""The largest answer a query may get, over a stream (documented limit)."""
_OVERHEAD = 512
"""Room for the array, the qid and the responder's name around the payload."""


def check_answer_size(size: int) -> None:
    """ValueError naming the limit unless `size` bytes may answer a query."""
    if size > MAX_ANSWER_BYTES:
        raise ValueError(f"a query response takes {size} bytes; the limit is {MAX_ANSWER_BYTES}")


def encode_answer(qid: int, responder: str, payload: bytes) -> bytes:
    check_answer_size(len(payload))
    out: bytes = cbor2.dumps([qid, responder, payload])
    return out


def decode_answer(body: bytes, max_name_bytes: int) -> QueryReply:
    """The answer a stream body holds, or WireError."""
    if len(body) > MAX_ANSWER_BYTES + _OVERHEAD:
        raise WireError("oversized", f"{len(body)} bytes")
    obj = _loads(body)
    if type(obj) is not list or len(obj) != 3:
        raise WireError("bad_field", "query answer")
    qid, responder, payload = obj
    if type(qid) is not int or not 0 <= qid <= MAX_UINT:
        raise WireError("bad_field", "query id")
    if type(responder) is not str or not responder or len(responder.encode()) > max_name_bytes:
        raise WireError("bad_field", "responder")
    if type(payload) is not bytes or len(payload) > MAX_ANSWER_BYTES:
        raise WireError("bad_field", "answer payload")
    return QueryReply(qid, responder, False, payload)


def _loads(body: bytes) -> Any:
    if not body:
        raise WireError("truncated", "empty")
    try:
        obj = cbor2.loads(body)
    except cbor2.CBORDecodeEOF:
        raise WireError("truncated") from None
    except RecursionError:
        raise WireError("too_deep") from None
    except Exception as exc:  # cbor2 raises several types on bad input
        raise WireError("bad_cbor", type(exc).__name__) from None
    try:
        again = cbor2.dumps(obj)
    except Exception:  # e.g. a self-referencing structure built with shared refs
        raise WireError("non_canonical") from None
    if again != body:  # one encoding only, no trailing bytes
        raise WireError("non_canonical")
    return obj
