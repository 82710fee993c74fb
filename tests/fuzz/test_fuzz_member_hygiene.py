"""Hypothesis fuzzing of the member hygiene inputs: the data directory's tags and
snapshot files, and the member filter's query parameters.

Each decoder may only fail with its typed error; what it accepts stays in bounds.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from gossip.core.types import MemberInfo, MemberState
from gossip.runtime import snapshot, tagfile
from gossip.runtime.memberfilter import FilterError, parse_filter

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
MEMBERS = [
    MemberInfo("web-1", ("10.0.0.1", 7946), MemberState.ALIVE, 1, {"role": "web"}, 0.0),
    MemberInfo("db-1", ("10.0.0.2", 7946), MemberState.DEAD, 3, {"role": "db"}, 0.0),
]


@settings(max_examples=120, deadline=None)
@given(st.binary(max_size=300) | JSONISH.map(lambda v: json.dumps(v).encode()))
def test_data_dir_files_fail_only_with_their_typed_errors(raw: bytes) -> None:
    try:
        change = tagfile.decode(raw)
        assert len(change.set) + len(change.deleted) <= tagfile.MAX_CHANGE_KEYS
    except tagfile.TagChangeError:
        pass
    try:
        rows = snapshot.decode(raw)
        assert all(0 < port < 65536 for _, (_, port) in rows)
    except snapshot.SnapshotError:
        pass


@settings(max_examples=120, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["status", "name", "tag.role", "tag.x", "other"]) | st.text(max_size=6),
        st.text(max_size=40),
        max_size=4,
    )
)
def test_member_filters_fail_only_with_filter_errors(query: dict[str, str]) -> None:
    try:
        chosen = parse_filter(query).select(MEMBERS)
    except FilterError:
        return
    assert all(m in MEMBERS for m in chosen)
