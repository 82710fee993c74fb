"""When a pending partition counts as filled: a quorum of in-sync sources, not one."""

from __future__ import annotations

from gossip.runtime.store.fill import FillState


def test_a_pending_partition_needs_the_given_number_of_distinct_sources() -> None:
    fill = FillState(4)
    assert fill.is_pending(2)
    assert not fill.in_sync(2, "b", needed=2)
    assert not fill.in_sync(2, "b", needed=2), "the same source twice is still one"
    assert fill.is_pending(2)
    assert fill.in_sync(2, "c", needed=2)
    assert not fill.is_pending(2)
    assert not fill.in_sync(2, "d", needed=2), "already filled"


def test_entering_again_forgets_the_sources_found_before() -> None:
    fill = FillState(4)
    fill.in_sync(1, "b", needed=2)
    fill.entered([1])
    assert not fill.in_sync(1, "c", needed=2)
    assert fill.in_sync(1, "d", needed=2)
