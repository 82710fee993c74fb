"""After an anti-entropy session two replicas hold the same records."""

from hypothesis import given, settings
from hypothesis import strategies as st

from gossip.core.store.antientropy import SyncSession, answer
from gossip.core.store.hlc import Timestamp
from gossip.core.store.memory_replica import MemoryReplica
from gossip.core.store.record import Record, merge

writes = st.lists(
    st.builds(
        Record,
        st.integers(0, 400).map(lambda i: f"key-{i}"),
        st.none() | st.binary(max_size=4),
        st.builds(Timestamp, st.integers(0, 50), st.integers(0, 2), st.sampled_from(["a", "b"])),
    ),
    max_size=150,
)


def sync(a: MemoryReplica, b: MemoryReplica, leaf_size: int, max_bytes: int) -> SyncSession:
    session = SyncSession(a, 7, leaf_size=leaf_size, max_bytes=max_bytes)
    request: bytes | None = session.start()
    while request is not None:
        response, _ = answer(lambda p: b if p == 7 else None, request, leaf_size=leaf_size)
        request = session.receive(response)
    return session


@settings(max_examples=60, deadline=None)
@given(writes, writes, writes, st.sampled_from([1, 4, 16]))
def test_one_session_makes_two_replicas_equal(
    common: list[Record], only_a: list[Record], only_b: list[Record], leaf_size: int
) -> None:
    a, b = MemoryReplica(stored_depth=2), MemoryReplica(stored_depth=2)
    a.load(common + only_a)
    b.load(common + only_b)
    expected: dict[str, Record] = {}
    for r in common + only_a + only_b:
        expected[r.key] = merge(expected.get(r.key), r)  # type: ignore[assignment]
    session = sync(a, b, leaf_size, 4 << 20)
    assert session.stats.error is None
    assert a.items() == b.items() == expected
    assert a.tree.root == b.tree.root


@settings(max_examples=15, deadline=None)
@given(writes, writes)
def test_small_budgets_still_converge_over_several_sessions(
    only_a: list[Record], only_b: list[Record]
) -> None:
    a, b = MemoryReplica(stored_depth=1), MemoryReplica(stored_depth=1)
    a.load(only_a)
    b.load(only_b)
    for _ in range(60):
        if a.items() == b.items():
            break
        sync(a, b, 4, 600)
    assert a.items() == b.items()
