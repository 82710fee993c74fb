"""Rendezvous hashing: ownership moves only where it must, shares follow weights."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gossip.core import rendezvous as hrw
from gossip.core.ownership.partition_table import PartitionTable

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
member_sets = st.sets(names, min_size=2, max_size=12)
keys = st.lists(st.binary(max_size=16), min_size=1, max_size=60, unique=True)
SMALL = 1 << 10  # partitions in property tests: fast, and the laws do not depend on size


def equal(members: set[str]) -> dict[str, float]:
    return dict.fromkeys(members, 1.0)


def test_hashes_are_pinned_so_every_process_and_host_agrees() -> None:
    # Changing any of these moves every item in a running cluster: they are part of the format.
    assert hrw.hash64("node-1") == hrw.hash64(b"node-1") == 0x29EBA4BC55B7578F
    assert hrw.fmix64(1) == 0xB456BCFC34C2CB2C  # murmur3's published fmix64(1)
    assert hrw.partition_hash(0) == 0xB9529A8999B73C95


@settings(deadline=None)  # timing is for benchmarks; a loaded CI machine must not fail this
@given(member_sets, keys)
def test_removing_a_member_moves_exactly_the_keys_it_owned(
    members: set[str], ks: list[bytes]
) -> None:
    gone = sorted(members)[0]
    before = {k: hrw.rank_key(k, equal(members), 1)[0] for k in ks}
    after = {k: hrw.rank_key(k, equal(members - {gone}), 1)[0] for k in ks}
    moved = {k for k in ks if before[k] != after[k]}
    assert moved == {k for k in ks if before[k] == gone}


@settings(deadline=None)
@given(member_sets, names, keys)
def test_adding_a_member_moves_keys_only_to_it(
    members: set[str], new: str, ks: list[bytes]
) -> None:
    before = {k: hrw.rank_key(k, equal(members), 1)[0] for k in ks}
    after = {k: hrw.rank_key(k, equal(members | {new}), 1)[0] for k in ks}
    assert all(after[k] == new for k in ks if before[k] != after[k])


@settings(deadline=None)
@given(member_sets, st.integers(min_value=0, max_value=SMALL - 1))
def test_table_rows_match_the_direct_ranking(members: set[str], partition: int) -> None:
    weights = {m: float(1 + len(m) % 3) for m in members}
    for ms in (equal(members), weights):
        table = PartitionTable(ms, partitions=SMALL, depth=3)
        expected = hrw.rank(hrw.partition_hash(partition), ms)
        assert table.owners_of_partition(partition, 3) == expected[:3]
        assert table.owners_of_partition(partition, 5) == expected[:5]  # beyond the depth


@settings(max_examples=40, deadline=None)
@given(member_sets, st.data())
def test_incremental_table_equals_a_full_rebuild(members: set[str], data: st.DataObject) -> None:
    ordered = sorted(members)
    table = PartitionTable(equal(members), partitions=SMALL, depth=2)
    for _ in range(3):
        gone = data.draw(st.sets(st.sampled_from(ordered), max_size=len(ordered) - 1))
        new = data.draw(st.sets(names, max_size=3))
        target = equal((members - gone) | new)
        derived = table.with_members(target)
        fresh = PartitionTable(target, partitions=SMALL, depth=2)
        assert derived.first_owners().tolist() == fresh.first_owners().tolist()
        for p in range(0, SMALL, 97):
            assert derived.owners_of_partition(p, 2) == fresh.owners_of_partition(p, 2)
        table, members, ordered = derived, set(target), sorted(target)


@settings(max_examples=25, deadline=None)
@given(member_sets)
def test_table_moves_only_the_departed_members_partitions(members: set[str]) -> None:
    table = PartitionTable(equal(members), partitions=SMALL)
    gone = sorted(members)[-1]
    smaller = table.with_members(equal(members - {gone}))
    assert table.moved_partitions(smaller) == table.partition_counts()[gone]
    moved = {
        p
        for p in range(SMALL)
        if table.owners_of_partition(p, 1) != smaller.owners_of_partition(p, 1)
    }
    assert moved == set(table.partitions_owned_by(gone))


def test_weighted_shares_follow_the_weights_within_a_few_percent() -> None:
    weights = {"small": 1.0, "medium": 2.0, "large": 4.0, "huge": 8.0, "other": 1.0}
    table = PartitionTable(weights, partitions=1 << 18)
    counts = table.partition_counts()
    total_weight = sum(weights.values())
    for name, weight in weights.items():
        share = counts[name] / table.partitions
        assert abs(share / (weight / total_weight) - 1) < 0.03, (name, share)


@settings(max_examples=10, deadline=None)
@given(st.dictionaries(names, st.integers(min_value=1, max_value=8), min_size=2, max_size=6))
def test_any_weights_give_shares_close_to_the_weight_shares(weights: dict[str, int]) -> None:
    table = PartitionTable({m: float(w) for m, w in weights.items()}, partitions=1 << 18)
    counts = table.partition_counts()
    total = sum(weights.values())
    for name, weight in weights.items():
        # One standard deviation of a share here is at most 0.001.
        assert abs(counts[name] / table.partitions - weight / total) < 0.01


def test_direct_weighted_ranking_gives_shares_by_weight() -> None:
    weights = {"a": 1.0, "b": 3.0}
    wins = Counter(hrw.rank(k, weights, 1)[0] for k in range(20_000))
    assert abs(wins["b"] / 20_000 - 0.75) < 0.02


def test_an_empty_table_has_no_owner_and_keys_map_to_stable_partitions() -> None:
    table = PartitionTable({}, partitions=SMALL)
    assert table.owner("anything") is None
    assert table.owners("anything", 3) == []
    assert table.partition_of("item-1") == table.partition_of(b"item-1") < SMALL


def test_invalid_shapes_and_weights_are_rejected() -> None:
    with pytest.raises(ValueError, match="power of two"):
        PartitionTable({}, partitions=1000)
    with pytest.raises(ValueError, match="weights must be > 0"):
        PartitionTable({"a": 0.0}, partitions=SMALL)
    with pytest.raises(ValueError, match="weights must be > 0"):
        PartitionTable({"a": float("nan")}, partitions=SMALL)
