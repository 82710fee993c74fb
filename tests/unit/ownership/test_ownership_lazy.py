"""The lazy partition table: nothing is ranked (nor numpy imported) until a lookup needs it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from gossip.core.ownership.assignment import DIRECT_LIMIT, Ownership
from gossip.core.ownership.partition_table import PartitionTable
from gossip.core.types import MemberInfo, MemberState
from gossip.runtime.ownership.service import AGENT_PARTITIONS, partition_count
from gossip.runtime.settings import SettingsError

KEYS = [f"key-{i}" for i in range(400)]


def alive(*names: str) -> list[MemberInfo]:
    return [MemberInfo(n, ("127.0.0.1", 7000), MemberState.ALIVE, 1, {}) for n in names]


@pytest.mark.parametrize(
    "weights", [{"a": 1.0, "b": 1.0, "c": 1.0}, {"a": 1.0, "b": 3.0, "c": 0.5}]
)
def test_direct_owner_gives_the_table_answer_without_building_it(weights: dict[str, float]) -> None:
    lazy = PartitionTable(weights, partitions=1 << 10)
    direct = [lazy.direct_owner(k) for k in KEYS]
    assert not lazy.materialized
    built = PartitionTable(weights, partitions=1 << 10)
    assert [built.owner(k) for k in KEYS] == direct
    assert built.materialized and len(set(direct)) == 3


def test_a_table_derived_from_a_built_one_is_built_and_from_a_lazy_one_lazy() -> None:
    lazy = PartitionTable({"a": 1.0, "b": 1.0}, partitions=1 << 8)
    assert not lazy.with_members({"a": 1.0, "c": 1.0}).materialized
    lazy.materialize()
    derived = lazy.with_members({"a": 1.0, "c": 1.0})
    assert derived.materialized
    fresh = PartitionTable({"a": 1.0, "c": 1.0}, partitions=1 << 8)
    assert [derived.owner(k) for k in KEYS] == [fresh.owner(k) for k in KEYS]


def settle(o: Ownership, *names: str) -> None:
    o.observe(0.0, alive(*names))
    o.handle_timeout(0.0, 1)


def test_few_declared_items_are_placed_without_a_table() -> None:
    o = Ownership("a", settle_time=0.0, coalesce_time=0.0, partitions=1 << 12, items=KEYS[:50])
    settle(o, "a", "b", "c")
    assert not o.table.materialized
    changed = [out for out in o.take_outputs() if type(out).__name__ == "OwnershipChanged"]
    assert changed and changed[0].partitions_owned is None
    assert changed[0].moved_partitions == 1 << 12, "from nobody, every partition moved"
    held = set(o.held())
    assert held and held == {k for k in KEYS[:50] if o.table.owner(k) == "a"}


def test_many_declared_items_build_the_table_in_the_rebuild() -> None:
    items = [f"i{n}" for n in range(DIRECT_LIMIT // 2 + 1)]
    o = Ownership("a", settle_time=0.0, coalesce_time=0.0, partitions=1 << 10, items=items)
    settle(o, "a", "b")
    assert o.table.materialized and o.held()


def test_the_agent_partition_count_is_a_checked_power_of_two() -> None:
    assert partition_count(None) == AGENT_PARTITIONS
    assert partition_count(1 << 20) == 1 << 20
    for bad in (100, 128, 1 << 23, "4096", 4096.0, True):
        with pytest.raises(SettingsError):
            partition_count(bad)


def test_an_agent_with_every_plugin_and_few_items_never_imports_numpy() -> None:
    code = textwrap.dedent(
        """
        import sys
        from gossip.runtime.plugins import load_plugins
        load_plugins()
        from gossip.core.store.placement import Placement
        from gossip.core.ownership.assignment import Ownership
        from gossip.core.types import MemberInfo, MemberState
        o = Ownership("a", settle_time=0.0, coalesce_time=0.0, items=["x", "y"])
        o.observe(0.0, [MemberInfo(n, ("127.0.0.1", 1), MemberState.ALIVE, 1, {}) for n in "abc"])
        o.handle_timeout(0.0, 1)
        Placement(["a", "b", "c", "d"]).replicas_of_key("k")
        print(sorted(o.held()), "numpy" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-1] == "False", out.stdout
