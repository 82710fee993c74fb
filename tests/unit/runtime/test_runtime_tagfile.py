"""Live tag changes: composed, bounded, recorded atomically, laid over the configured tags."""

from __future__ import annotations

from pathlib import Path

import pytest

from gossip.runtime import tagfile
from gossip.runtime.tagfile import TagChange, TagChangeError, TagRecord, start_tags, tag_change


def test_a_recorded_change_wins_key_by_key_over_the_configured_tags() -> None:
    change = TagChange({"role": "db"}, frozenset({"zone"}))
    assert start_tags({"role": "web", "zone": "a", "rack": "r1"}, change) == {
        "role": "db",
        "rack": "r1",
    }


def test_later_changes_override_earlier_ones_set_after_delete_and_delete_after_set() -> None:
    first = TagChange({"a": "1", "b": "2"}, frozenset({"c"}))
    later = TagChange({"c": "3"}, frozenset({"a"}))
    both = first.then(later)
    assert both == TagChange({"b": "2", "c": "3"}, frozenset({"a"}))
    start = {"a": "0", "c": "0", "d": "4"}
    assert both.apply(start) == later.apply(first.apply(start)) == {"b": "2", "c": "3", "d": "4"}


@pytest.mark.parametrize(
    ("sets", "deleted", "why"),
    [
        ({"a": 1}, [], "set: expected an object of string values"),
        ({}, "a", "delete: expected a list"),
        ({"": "x"}, [], "tag names must be"),
        ({"k" * 129: "x"}, [], "tag names must be"),
        ({"a": "v" * 513}, [], "value longer than"),
        ({f"k{i}": "" for i in range(65)}, [], "at most 64"),
        ({"a": "1"}, ["a"], "both set and deleted"),
    ],
)
def test_an_out_of_bounds_change_is_refused_naming_the_part(
    sets: object, deleted: object, why: str
) -> None:
    with pytest.raises(TagChangeError, match=why):
        tag_change(sets, deleted)


def test_the_record_survives_a_restart_and_a_bad_file_is_skipped(tmp_path: Path) -> None:
    record = TagRecord(tmp_path)
    record.record(TagChange({"role": "db"}, frozenset()))
    record.record(TagChange({}, frozenset({"zone"})))
    assert TagRecord(tmp_path).load() == TagChange({"role": "db"}, frozenset({"zone"}))
    (tmp_path / tagfile.FILE_NAME).write_bytes(b'{"set": {"a": 5}}')
    fresh = TagRecord(tmp_path)
    assert fresh.load() == TagChange() and "set:" in fresh.problem


@pytest.mark.parametrize(
    "raw", [b"", b"[]", b"{", b'{"set": []}', b"[" * 100_000, b" " * (tagfile.MAX_FILE_BYTES + 1)]
)
def test_the_file_decoder_fails_only_with_its_typed_error(raw: bytes) -> None:
    with pytest.raises(TagChangeError):
        tagfile.decode(raw)
