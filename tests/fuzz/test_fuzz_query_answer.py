"""Hypothesis fuzzing of the stream body of a large query answer
(core/membership/queryanswer.py): any bytes decode to an answer within the
limits or are refused with WireError, and what decodes re-encodes to itself."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gossip.core.membership.queryanswer import MAX_ANSWER_BYTES, decode_answer, encode_answer
from gossip.core.membership.wireschema import WireError

MAX_NAME = 128
VALID = encode_answer(7, "responder", b"an answer")


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(VALID)
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.integers(0, 2))
        if op == 0 and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == 1:
            del data[at:]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=9))
    return bytes(data)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), mutated()))
def test_a_body_decodes_within_limits_or_is_refused(body: bytes) -> None:
    try:
        reply = decode_answer(body, MAX_NAME)
    except WireError as exc:
        assert exc.reason
        return
    assert len(reply.payload) <= MAX_ANSWER_BYTES and not reply.ack
    assert 0 < len(reply.responder.encode()) <= MAX_NAME
    assert encode_answer(reply.qid, reply.responder, reply.payload) == body
