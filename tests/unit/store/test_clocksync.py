"""Clock agreement: the correction is the lower median of the offsets to live peers,
robust to a minority of bad clocks; readings that are absurd or stale do not count."""

from __future__ import annotations

import pytest

from gossip.core.store.clocksync import MAX_PEERS, ClockAgreement, lower_median

HOUR = 3_600_000
MAX_OFFSET = 60_000


def agreement(offsets: dict[str, int], now: float = 0.0) -> ClockAgreement:
    a = ClockAgreement(MAX_OFFSET, max_age=60.0)
    for peer, off in offsets.items():
        assert a.observe(peer, off, now)
    return a


def test_the_lower_median_takes_the_earlier_of_two_middles() -> None:
    assert lower_median([5]) == 5
    assert lower_median([3, 1, 2]) == 2
    assert lower_median([HOUR, 0]) == 0
    with pytest.raises(ValueError):
        lower_median([])


def test_one_clock_an_hour_fast_moves_nobody_else() -> None:
    v = agreement({"b": 20, "c": -30, "d": HOUR}).verdict(1.0, {"b", "c", "d"})
    assert v.correction_ms == 0
    assert (v.readings, v.agreeing, v.reason) == (4, 3, None)


def test_the_fast_node_moves_to_its_peers_and_then_agrees() -> None:
    v = agreement({"a": -HOUR, "b": -HOUR + 40, "c": -HOUR - 25}).verdict(1.0, {"a", "b", "c"})
    assert v.correction_ms == -HOUR
    assert v.reason is None and v.agreeing == 4


def test_two_nodes_settle_on_the_earlier_clock() -> None:
    ahead = agreement({"a": -HOUR}).verdict(1.0, {"a"})
    assert ahead.correction_ms == -HOUR and ahead.reason is None
    behind = agreement({"b": HOUR}).verdict(1.0, {"b"})
    assert behind.correction_ms == 0
    assert behind.reason is not None and "1 of 2" in behind.reason


def test_clocks_scattered_with_no_majority_refuse() -> None:
    v = agreement({"b": 30 * 60_000, "c": -30 * 60_000}).verdict(1.0, {"b", "c"})
    assert v.correction_ms == 0
    assert v.reason is not None and "majority" in v.reason


def test_a_node_with_live_peers_and_no_reading_is_not_checked_yet() -> None:
    assert ClockAgreement(MAX_OFFSET, 60.0).verdict(0.0, {"b"}).reason == (
        "clock not yet checked against any live peer"
    )
    alone = ClockAgreement(MAX_OFFSET, 60.0).verdict(0.0, set())
    assert alone.reason is None and alone.correction_ms == 0


def test_absurd_readings_are_ignored_and_counted() -> None:
    a = ClockAgreement(MAX_OFFSET, 60.0)
    assert not a.observe("b", 10 * 86_400_000, 0.0)
    assert not a.observe("c", -10 * 86_400_000, 0.0)
    assert a.ignored == 2
    assert a.offsets(0.0, {"b", "c"}) == {}


def test_stale_readings_and_departed_peers_are_forgotten_but_the_correction_stays() -> None:
    a = agreement({"b": HOUR, "c": HOUR})
    assert a.verdict(1.0, {"b", "c"}).correction_ms == HOUR
    assert a.offsets(1.0, {"b"}) == {"b": HOUR}  # c is not live (left, or not yet joined)
    assert a.offsets(61.0, {"b", "c"}) == {}  # the readings are too old
    alone = a.verdict(61.0, set())
    assert alone.correction_ms == HOUR and alone.reason is None


def test_a_reading_that_arrives_before_its_peer_is_live_counts_once_it_is() -> None:
    a = agreement({"b": -HOUR})
    assert a.verdict(1.0, set()).correction_ms == 0
    assert a.verdict(2.0, {"b"}).correction_ms == -HOUR


def test_readings_kept_are_bounded() -> None:
    a = ClockAgreement(MAX_OFFSET, 60.0)
    for i in range(MAX_PEERS + 10):
        a.observe(f"p{i}", 0, float(i) / 1000)
    names = {f"p{i}" for i in range(MAX_PEERS + 10)}
    kept = a.offsets(5.0, names)
    assert len(kept) == MAX_PEERS and "p0" not in kept and f"p{MAX_PEERS + 9}" in kept


def test_every_change_to_the_readings_kept_is_counted() -> None:
    agreement = ClockAgreement(500, 60.0)
    agreement.observe("b", 0, 0.0)
    agreement.observe("c", 10**10, 0.0)  # absurd: not kept, no change
    assert agreement.changes == 1
    agreement.offsets(30.0, {"b"})
    assert agreement.changes == 1
    agreement.offsets(61.0, {"b"})  # b's reading went stale
    assert agreement.changes == 2
