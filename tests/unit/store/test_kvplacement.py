"""Store placement: stable partitions, R ranked replicas, minimal movement."""

from gossip.core.store.placement import Placement, partition_of


def test_a_key_always_maps_to_the_same_partition() -> None:
    assert partition_of("user/42", 64) == partition_of("user/42", 64)
    assert {partition_of(f"k{i}", 64) for i in range(2000)} == set(range(64))


def test_each_partition_has_r_distinct_replicas() -> None:
    p = Placement([f"n{i}" for i in range(5)], partitions=16, replicas=3)
    for part in range(16):
        assert len(set(p.replicas(part))) == 3
    assert sum(len(p.partitions_of(f"n{i}")) for i in range(5)) == 48


def test_small_clusters_and_all_replication() -> None:
    assert Placement(["a"], partitions=8, replicas=3).replicas(5) == ("a",)
    every = Placement(["a", "b", "c", "d"], partitions=8, replicas=None)
    assert all(sorted(every.replicas(i)) == ["a", "b", "c", "d"] for i in range(8))


def test_losing_a_member_only_moves_its_own_replicas() -> None:
    names = [f"n{i}" for i in range(6)]
    before = Placement(names, partitions=64, replicas=3)
    after = Placement(names[:-1], partitions=64, replicas=3)
    for part in range(64):
        kept = [n for n in before.replicas(part) if n != "n5"]
        assert kept == [n for n in after.replicas(part) if n in kept]
        assert set(kept) <= set(after.replicas(part))
