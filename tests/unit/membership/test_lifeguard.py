"""Lifeguard's pure rules and the suspicion record."""

from __future__ import annotations

import math

import pytest

from gossip.core.membership.lifeguard import (
    Health,
    expected_confirmations,
    stall_penalty,
    suspicion_min_timeout,
    suspicion_timeout,
)
from gossip.core.membership.suspicion import Suspicion


@pytest.mark.parametrize(
    ("n", "expected"), [(1, 4.0), (5, 4.0), (10, 4.0), (100, 8.0), (1000, 12.0)]
)
def test_min_timeout_is_mult_times_log10_n_times_interval(n: int, expected: float) -> None:
    assert suspicion_min_timeout(4, n, 1.0) == pytest.approx(expected)


def test_timeout_shrinks_logarithmically_from_max_to_min_with_confirmations() -> None:
    lo, hi, k = 8.0, 48.0, 2
    values = [suspicion_timeout(lo, hi, k, c) for c in range(4)]
    assert values[0] == hi
    assert values[1] == pytest.approx(hi - (hi - lo) * math.log(2) / math.log(3))
    assert values[2] == pytest.approx(lo)
    assert values[3] == lo  # never below the minimum
    assert values[0] > values[1] > values[2]


def test_no_confirmations_are_expected_in_tiny_clusters() -> None:
    assert expected_confirmations(4, 3) == 0
    assert expected_confirmations(4, 4) == 2
    assert suspicion_timeout(4.0, 24.0, 0, 0) == 4.0


def test_health_is_clamped_and_scales_timeouts() -> None:
    h = Health(8)
    assert not h.apply(-1)
    assert h.apply(3) and h.score == 3
    assert h.scale(0.5) == 2.0
    h.apply(100)
    assert h.score == 8
    h.apply(-2)
    assert h.score == 6


def test_a_suspicion_counts_each_other_accuser_once_up_to_k() -> None:
    s = Suspicion("m", 1, "a", start=10.0, k=2, min_s=8.0, max_s=48.0)
    assert s.confirmations == 0 and s.deadline == 58.0
    assert not s.confirm("a")  # the first accuser is not a confirmation
    assert s.confirm("b") and not s.confirm("b")
    assert s.confirm("c")
    assert not s.confirm("d")  # k reached
    assert s.deadline == pytest.approx(18.0)


def test_a_stall_costs_nothing_below_a_probe_timeout_then_one_per_probe_interval() -> None:
    assert stall_penalty(0.49, 0.5, 1.0) == 0
    assert stall_penalty(0.5, 0.5, 1.0) == 1
    assert stall_penalty(0.99, 0.5, 1.0) == 1
    assert stall_penalty(2.5, 0.5, 1.0) == 3
    assert stall_penalty(30.0, 3.0, 5.0) == 7
