"""Hybrid logical clock: monotonic, tie-broken, resistant to far-future peers."""

from gossip.core.store.hlc import MAX_COUNTER, HybridClock, Timestamp


def test_timestamps_increase_even_when_wall_time_stands_still() -> None:
    clock = HybridClock("a")
    first = clock.now(1000)
    second = clock.now(1000)
    third = clock.now(999)  # wall clock stepped back
    assert first < second < third
    assert (second.wall, second.counter) == (1000, 1)


def test_a_new_millisecond_resets_the_counter() -> None:
    clock = HybridClock("a")
    clock.now(1000)
    clock.now(1000)
    assert clock.now(1001) == Timestamp(1001, 0, "a")


def test_observing_a_later_remote_moves_the_clock_past_it() -> None:
    clock = HybridClock("a")
    remote = Timestamp(5000, 7, "b")
    assert clock.observe(1000, remote)
    assert clock.now(1000) > remote


def test_a_remote_far_in_the_future_is_not_adopted() -> None:
    clock = HybridClock("a", max_offset_ms=100)
    assert not clock.observe(1000, Timestamp(1101, 0, "b"))
    assert clock.now(1000) == Timestamp(1000, 0, "a")


def test_counter_overflow_borrows_the_next_millisecond() -> None:
    clock = HybridClock("a")
    clock.observe(1000, Timestamp(1000, MAX_COUNTER, "b"))
    assert clock.now(1000) == Timestamp(1001, 0, "a")


def test_node_name_breaks_ties_and_packing_keeps_order() -> None:
    assert Timestamp(1, 2, "a") < Timestamp(1, 2, "b")
    assert Timestamp(1, 65535, "z").packed < Timestamp(2, 0, "a").packed
