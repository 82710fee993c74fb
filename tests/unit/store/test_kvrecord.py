"""Records: limits, wire decoding of untrusted input, tombstones."""

import pytest

from gossip.core.store.hlc import Timestamp
from gossip.core.store.record import (
    MAX_KEY_BYTES,
    MAX_VALUE_BYTES,
    Record,
    RecordError,
    merge,
    record_from_wire,
    record_to_wire,
    validate_key,
    validate_value,
)

TS = Timestamp(10, 0, "n1")


def test_keys_must_be_non_empty_and_bounded() -> None:
    validate_key("k" * MAX_KEY_BYTES)
    with pytest.raises(RecordError):
        validate_key("")
    with pytest.raises(RecordError, match="limit"):
        validate_key("é" * MAX_KEY_BYTES)


def test_values_are_bounded() -> None:
    validate_value(b"x" * MAX_VALUE_BYTES)
    with pytest.raises(RecordError):
        validate_value(b"x" * (MAX_VALUE_BYTES + 1))


def test_a_record_round_trips_through_its_wire_form() -> None:
    for r in (Record("k", b"v", TS), Record("k", None, TS)):
        assert record_from_wire(record_to_wire(r)) == r


@pytest.mark.parametrize(
    "bad",
    [
        None,
        [],
        ["k", b"v", 1, 0],
        [1, b"v", 1, 0, "n"],
        ["k", "text", 1, 0, "n"],
        ["k", b"v", -1, 0, "n"],
        ["k", b"v", 1, 1 << 16, "n"],
        ["k", b"v", 1.5, 0, "n"],
        ["k", b"v", True, 0, "n"],
        ["", b"v", 1, 0, "n"],
        ["k", b"v", 1, 0, ""],
    ],
)
def test_malformed_wire_records_are_rejected(bad: object) -> None:
    with pytest.raises(RecordError):
        record_from_wire(bad)


def test_a_tombstone_beats_a_value_with_the_same_version() -> None:
    live, dead = Record("k", b"v", TS), Record("k", None, TS)
    assert merge(live, dead) is dead
    assert merge(dead, live) is dead


def test_entries_differ_when_content_differs_under_one_version() -> None:
    assert Record("k", b"a", TS).entry() != Record("k", b"b", TS).entry()
    assert Record("k", b"a", TS).entry() == Record("k", b"a", TS).entry()
