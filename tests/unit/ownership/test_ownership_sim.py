"""Ownership on top of real membership cores in the discrete-event simulator: the cluster
agrees on owners, a crash moves only the crashed nodes' items (each acquired exactly once),
and after a partition heals every node agrees again. Replays exactly for a seed."""

from __future__ import annotations

from typing import Any

import pytest

from gossip.core.membership.config import Config
from gossip.core.ownership.assignment import ItemAcquired, Ownership, OwnershipOutput
from gossip.sim.engine import Host, Simulation, sim_address

ITEMS = [f"job-{i}" for i in range(200)]
N = 10


class Owners:
    """One Ownership per simulated host, fed each time its core reports a membership change."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.by_name = {
            h.name: Ownership(
                h.name, settle_time=5.0, coalesce_time=0.5, partitions=1 << 10, items=ITEMS
            )
            for h in sim.hosts
        }
        self.timer: dict[str, float | None] = dict.fromkeys(self.by_name)
        self.outputs: list[tuple[float, str, OwnershipOutput]] = []
        sim.listeners.append(self._on_output)

    def _on_output(self, host: Host, output: Any) -> None:
        if host.node is not None:
            self.by_name[host.name].observe(self.sim.now, host.node.members())
            self._collect(host)

    def _collect(self, host: Host) -> None:
        own = self.by_name[host.name]
        self.outputs += [(self.sim.now, host.name, o) for o in own.take_outputs()]
        deadline = own.next_deadline()
        if deadline is not None and deadline != self.timer[host.name]:
            self.timer[host.name] = deadline
            self.sim.call_at(max(deadline, self.sim.now), lambda: self._fire(host, deadline))

    def _fire(self, host: Host, deadline: float) -> None:
        if self.timer[host.name] != deadline or not self.sim.running(host):
            return
        self.timer[host.name] = None
        self.by_name[host.name].handle_timeout(self.sim.now, int(self.sim.now * 1000))
        self._collect(host)

    def check_agreement(self, names: list[str]) -> dict[str, str | None]:
        """Every named node has a table of exactly `names`, the same one, and the declared
        items are held exactly once among them, each by its owner."""
        owns = [self.by_name[n] for n in names]
        assert all(sorted(o.table.members) == sorted(names) for o in owns)
        assert len({tuple(o.table.first_owners().tolist()) for o in owns}) == 1
        holders = [item for o in owns for item in o.held()]
        assert sorted(holders) == sorted(ITEMS), "every item held exactly once"
        owners = {i: owns[0].owner(i) for i in ITEMS}
        assert all(i in self.by_name[owner].held() for i, owner in owners.items() if owner)
        return owners


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_owners_agree_move_only_a_crashed_nodes_items_and_agree_again_after_a_heal(
    seed: int,
) -> None:
    sim = Simulation(N, Config.for_profile("lan", cluster_name="own"), seed=seed)
    owners = Owners(sim)
    for i in range(N):
        sim.start(i, [sim_address(0)] if i else [], at=i * 0.1)
    sim.run_until(30.0)
    names = [h.name for h in sim.hosts]
    before = owners.check_agreement(names)

    crashed = [sim.hosts[3].name, sim.hosts[7].name]
    sim.crash(3)
    sim.crash(7)
    mark = len(owners.outputs)
    sim.run_until(90.0)
    survivors = [n for n in names if n not in crashed]
    after = owners.check_agreement(survivors)
    moved = {i for i in ITEMS if before[i] != after[i]}
    assert moved == {i for i in ITEMS if before[i] in crashed}
    taken = [(n, o.item) for _, n, o in owners.outputs[mark:] if isinstance(o, ItemAcquired)]
    assert sorted(i for _, i in taken) == sorted(moved), "each moved item acquired once"
    assert all(after[i] == n for n, i in taken)

    # A partition long enough for each side to declare the other dead, then a heal.
    sides = [[0, 1, 2, 4], [5, 6, 8, 9]]
    sim.faults.partition(*sides)
    sim.run_until(150.0)
    for side in sides:
        side_names = [sim.hosts[i].name for i in side]
        owners.check_agreement(side_names)  # each side owns everything on its own
    sim.faults.heal()
    sim.run_until(260.0)
    owners.check_agreement(survivors)
