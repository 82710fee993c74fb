"""Hypothesis fuzzing of the POST /v1/event and /v1/query body parsers: any
JSON value is either valid or a 400 ApiError naming the field."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gossip.runtime.api import parse_query, parse_user_event
from gossip.runtime.http import ApiError

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
BODIES = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {"name": JSON | st.text(max_size=10)},
        optional={
            "payload": JSON,
            "payload_base64": JSON | st.text(),
            "coalesce": JSON,
            "node": JSON | st.text(),
            "tags": JSON,
            "ack": JSON,
            "timeout": JSON,
        },
    ),
)


@settings(max_examples=100, deadline=None)
@given(BODIES)
def test_a_body_is_parsed_or_refused_with_a_400(body: Any) -> None:
    try:
        name, payload, coalesce = parse_user_event(body)
    except ApiError as exc:
        assert exc.status == 400
        return
    assert isinstance(name, str) and name
    assert isinstance(payload, bytes)
    assert isinstance(coalesce, bool)


@settings(max_examples=100, deadline=None)
@given(BODIES)
def test_a_query_body_is_parsed_or_refused_with_a_400(body: Any) -> None:
    try:
        q = parse_query(body)
    except ApiError as exc:
        assert exc.status == 400
        return
    assert q.name and isinstance(q.payload, bytes) and isinstance(q.node, str)
    assert 0 < q.timeout <= 300 and isinstance(q.ack, bool)
