"""Last-writer-wins merge laws, and the Merkle tree's independence from history."""

from hypothesis import given
from hypothesis import strategies as st

from gossip.core.store.hlc import Timestamp
from gossip.core.store.memory_replica import MemoryReplica
from gossip.core.store.merkle import MerkleTree
from gossip.core.store.record import Record, merge

timestamps = st.builds(
    Timestamp, st.integers(0, 5), st.integers(0, 3), st.sampled_from(["a", "b", "c"])
)
records = st.builds(
    Record, st.sampled_from(["x", "y", "z", "w"]), st.none() | st.binary(max_size=3), timestamps
)
same_key = st.builds(Record, st.just("k"), st.none() | st.binary(max_size=3), timestamps)
maybe = st.none() | same_key


@given(maybe, maybe)
def test_merge_is_commutative(a: Record | None, b: Record | None) -> None:
    assert merge(a, b) == merge(b, a)


@given(maybe, maybe, maybe)
def test_merge_is_associative(a: Record | None, b: Record | None, c: Record | None) -> None:
    assert merge(merge(a, b), c) == merge(a, merge(b, c))


@given(maybe)
def test_merge_is_idempotent(a: Record | None) -> None:
    assert merge(a, a) == a


@given(st.lists(st.tuples(st.booleans(), records), max_size=60), st.integers(0, 2))
def test_incremental_root_equals_a_tree_built_from_scratch(
    ops: list[tuple[bool, Record]], depth: int
) -> None:
    rep = MemoryReplica(stored_depth=depth)
    for remove, r in ops:
        if remove:
            rep.remove(r.key)
        else:
            rep.put(r)
    scratch = MerkleTree.from_entries((r.entry() for r in rep.items().values()), depth)
    assert rep.tree.root == scratch.root
    assert rep.tree.same_as(scratch)


@given(st.permutations(list(range(12))))
def test_arrival_order_does_not_change_the_tree(order: list[int]) -> None:
    recs = [Record(f"k{i % 5}", bytes([i]), Timestamp(i, 0, "a")) for i in range(12)]
    one, two = MemoryReplica(), MemoryReplica()
    one.load(recs)
    two.load(recs[i] for i in order)
    assert one.items() == two.items()
    assert one.tree.same_as(two.tree)
