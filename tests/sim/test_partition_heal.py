"""A 5-node cluster split 2 + 3 for longer than the suspicion timeout heals by
itself once the network does, within the documented bound (docs/security.md).

Runs the real membership cores in the discrete-event simulator, so minutes of
cluster time cost a fraction of a second and every run replays exactly.
`python3 tests/sim/test_partition_heal.py [SEEDS]` prints the distribution of
heal times over many seeds.
"""

from __future__ import annotations

import math

import pytest

from gossip.core.membership.config import Config
from gossip.core.types import MemberState
from gossip.sim.checks import all_see_alive, views_agree
from gossip.sim.engine import Simulation, sim_address

SIDES = [[0, 1], [2, 3, 4]]
START = 20.0


def max_suspicion_timeout(cfg: Config, n: int) -> float:
    """Lifeguard's upper bound on the suspicion timeout for n members."""
    base = cfg.suspicion_mult * max(1.0, math.log10(n)) * cfg.probe_interval
    return base * cfg.suspicion_max_timeout_mult


def heal_bound(cfg: Config, n: int = 5) -> float:
    """The documented bound: one reconnect tick (jittered up to 1.25 x the
    interval) to push-pull across, then at most one suspicion timeout for the
    other side's stale accusations (which only raise suspicion) to be refuted."""
    return 1.25 * cfg.reconnect_interval + max_suspicion_timeout(cfg, n)


def heal_time(cfg: Config, seed: int, partition_s: float) -> float:
    """Split at START for `partition_s`, heal, and return how long until every
    node sees all five alive and all views agree."""
    sim = Simulation(5, cfg, seed=seed)
    for i in range(5):
        sim.start(i, [sim_address(0)] if i else [], at=i * 0.2)
    sim.run_until(START)
    assert all_see_alive(sim, 5), "the cluster never formed"
    sim.faults.partition(*SIDES)
    sim.run_until(START + partition_s)
    for side, other in (SIDES, SIDES[::-1]):
        for i in side:
            node = sim.hosts[i].node
            assert node is not None
            for j in other:
                info = node.member(sim.hosts[j].name)
                assert info is None or info.state >= MemberState.DEAD, (i, j, info)
    sim.faults.heal()
    healed_at = sim.now
    limit = healed_at + 3 * heal_bound(cfg)
    while sim.now < limit:
        sim.run_until(sim.now + 0.25)
        if all_see_alive(sim, 5) and views_agree(sim):
            return sim.now - healed_at
    raise AssertionError(f"seed {seed}: not healed {limit - healed_at:.0f} s after the heal")


@pytest.mark.parametrize(
    ("profile", "partition_s"),
    [
        ("lan", None),  # None: twice the longest suspicion timeout, plus 10 s
        ("local", None),
        ("lan", 400.0),  # past dead_reap_time: the other side is forgotten, not just dead
    ],
)
def test_a_two_plus_three_split_heals_within_the_documented_bound(
    profile: str, partition_s: float | None
) -> None:
    cfg = Config.for_profile(profile, cluster_name="heal")
    if partition_s is None:
        partition_s = 2 * max_suspicion_timeout(cfg, 5) + 10  # each side declares the other dead
    times = [heal_time(cfg, seed, partition_s) for seed in range(1, 9)]
    print(f"{profile}: partition {partition_s:.0f} s, heal times {[round(t, 1) for t in times]}")
    assert max(times) <= heal_bound(cfg)


if __name__ == "__main__":
    import sys

    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    for profile, split in (("lan", None), ("local", None), ("lan", 400.0)):
        config = Config.for_profile(profile, cluster_name="heal")
        split = split or 2 * max_suspicion_timeout(config, 5) + 10
        times = sorted(heal_time(config, seed, split) for seed in range(1, seeds + 1))
        print(
            f"{profile} partition {split:.0f} s, {seeds} seeds: median {times[len(times) // 2]:.1f}"
            f" p95 {times[int(len(times) * 0.95)]:.1f} max {times[-1]:.1f}"
            f" (bound {heal_bound(config):.1f}) s"
        )
