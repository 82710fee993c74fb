"""Versions carry the writer's identity: two writes of one key in one millisecond
by two coordinators never look alike to anti-entropy, so replicas converge."""

from __future__ import annotations

from gossip.core.store.antientropy import SyncSession, answer
from gossip.core.store.hlc import Timestamp
from gossip.core.store.memory_replica import MemoryReplica
from gossip.core.store.record import Record

# Two writer names whose (node, value) digests agree in their first 32 bits: an entry
# that summarised the writer in 32 bits could not tell these two writes apart.
WRITER_A = "node-72765"
WRITER_B = "node-91010"


def sync(a: MemoryReplica, b: MemoryReplica) -> None:
    session = SyncSession(a, 0)
    request: bytes | None = session.start()
    while request is not None:
        response, _ = answer(lambda p: b, request)
        request = session.receive(response)


def test_same_millisecond_writes_from_two_writers_have_different_entries() -> None:
    a = Record("k", b"v", Timestamp(1000, 0, WRITER_A))
    b = Record("k", b"v", Timestamp(1000, 0, WRITER_B))
    assert a.entry() != b.entry()
    assert a.entry().fingerprint != b.entry().fingerprint


def test_replicas_holding_either_same_millisecond_write_converge() -> None:
    one, two = MemoryReplica(), MemoryReplica()
    one.put(Record("k", b"v", Timestamp(1000, 0, WRITER_A)))
    two.put(Record("k", b"v", Timestamp(1000, 0, WRITER_B)))
    sync(one, two)
    assert one.items() == two.items()
    assert one.get("k") is not None and one.get("k").version.node == WRITER_B  # type: ignore[union-attr]
