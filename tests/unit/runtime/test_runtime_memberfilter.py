"""Member filters: status, whole-name and whole-tag-value patterns, bounded and refused clearly."""

from __future__ import annotations

import pytest

from gossip.core.types import MemberInfo, MemberState
from gossip.runtime.memberfilter import MAX_PATTERN_CHARS, FilterError, parse_filter


def _m(name: str, state: MemberState = MemberState.ALIVE, **tags: str) -> MemberInfo:
    return MemberInfo(name, ("127.0.0.1", 7946), state, 1, tags, 0.0)


MEMBERS = [
    _m("web-1", role="web", dc="eu-1"),
    _m("web-2", MemberState.DEAD, role="web", dc="us-1"),
    _m("db-1", role="db", dc="eu-2"),
    _m("db-10", MemberState.LEFT, role="db"),
    _m("cache", MemberState.SUSPECT),
]


def names(query: dict[str, str]) -> list[str]:
    return [m.name for m in parse_filter(query).select(MEMBERS)]


def test_no_filter_lists_every_member() -> None:
    assert names({}) == [m.name for m in MEMBERS]


def test_status_takes_labels_a_list_and_failed_for_dead() -> None:
    assert names({"status": "failed"}) == ["web-2"]
    assert names({"status": "dead"}) == ["web-2"]
    assert names({"status": "alive,suspect"}) == ["web-1", "db-1", "cache"]


def test_patterns_match_the_whole_name_and_the_whole_tag_value() -> None:
    assert names({"name": "db-1"}) == ["db-1"]
    assert names({"name": "db-.*"}) == ["db-1", "db-10"]
    assert names({"tag.dc": "eu"}) == []
    assert names({"tag.dc": "eu-.*"}) == ["web-1", "db-1"]


def test_every_filter_must_hold_and_a_missing_tag_never_matches() -> None:
    assert names({"tag.role": "web", "tag.dc": "eu-.*"}) == ["web-1"]
    assert names({"tag.role": "db", "status": "alive"}) == ["db-1"]
    assert names({"tag.dc": ".*"}) == ["web-1", "web-2", "db-1"]


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"name": "("}, "name: invalid regular expression"),
        ({"tag.role": "[a-"}, "tag.role: invalid regular expression"),
        ({"status": "sleepy"}, "status: 'sleepy' is not one of"),
        ({"nmae": "x"}, "nmae: unknown filter"),
        ({"tag.": "x"}, "tag.: unknown filter"),
        ({"name": "a" * (MAX_PATTERN_CHARS + 1)}, "name: pattern longer than"),
    ],
)
def test_a_bad_filter_is_an_error_naming_the_parameter(query: dict[str, str], named: str) -> None:
    with pytest.raises(FilterError, match=named.replace("(", r"\(").replace("[", r"\[")):
        parse_filter(query)


def test_too_many_tag_filters_are_refused() -> None:
    with pytest.raises(FilterError, match="at most"):
        parse_filter({f"tag.k{i}": "x" for i in range(17)})


def test_a_pattern_that_backtracks_without_end_is_refused_not_run_to_the_end() -> None:
    slow = [_m("a" * 119 + "b")]
    with pytest.raises(FilterError, match="too slow"):
        parse_filter({"name": "(a|aa)+"}).select(slow)
