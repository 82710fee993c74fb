"""Vivaldi coordinates over a simulated WAN of several datacentres.

The run is seeded, so its figure is exact; the bound is loose on purpose
(the measured figures, larger runs included, are in docs/membership.md).
"""

from __future__ import annotations

from gossip.sim.wan import Wan, check_coordinates


def test_the_wan_matrix_is_symmetric_and_slower_between_datacentres() -> None:
    wan = Wan(8, 4, seed=1)
    assert wan.rtt(0, 5) == wan.rtt(5, 0)
    assert wan.rtt(0, 4) < 0.005 < wan.rtt(0, 1)  # same site vs two sites


def test_coordinates_estimate_a_wan_within_a_loose_median_error() -> None:
    report = check_coordinates(nodes=20, dcs=4, duration=120, seed=1)
    assert report.pairs == 20 * 19
    assert report.median_relative_error < 0.35
