"""Merkle fingerprints keyed with the cluster secret."""

from __future__ import annotations

import trio
import trio.testing

from gossip.core.store.antientropy import SyncSession, answer
from gossip.core.store.fingerprint import Fingerprinter, derive_key
from gossip.core.store.hlc import Timestamp
from gossip.core.store.merkle import MerkleTree
from gossip.core.store.placement import partition_of
from gossip.core.store.record import Record
from gossip.runtime.store.settings import StoreSettings
from gossip.runtime.store.storage import KVStorage
from gossip.runtime.store.storedreplica import StoredReplica
from tests.unit.store.memcluster import running, wait_until

KEY = derive_key(b"k" * 32)


def storage(key: bytes | None = KEY, n: int = 300, skip: int = -1) -> KVStorage:
    s = KVStorage(None, lambda k: partition_of(k, 1), fingerprint_key=key)
    s.apply(
        Record(f"key-{i}", b"v%d" % i, Timestamp(1000 + i, 0, "a")) for i in range(n) if i != skip
    )
    return s


def test_a_keyed_fingerprint_depends_on_the_key_and_never_travels() -> None:
    entry = Record("k", b"v", Timestamp(1, 0, "a")).entry()
    one, two = Fingerprinter(KEY).keyed(entry), Fingerprinter(derive_key(b"x" * 32)).keyed(entry)
    assert len({entry.fp, one.fp, two.fp}) == 3
    assert one.pack() == two.pack() == entry.pack()


def test_trees_sum_keyed_fingerprints_and_follow_a_new_key() -> None:
    keyed, plain = storage(KEY), storage(None)
    assert keyed.root(0)[1] == plain.root(0)[1] == 300
    assert keyed.root(0) != plain.root(0)
    fresh = MerkleTree.from_entries(keyed.entries(0, 0, (1 << 64) - 1))
    assert fresh.root == keyed.root(0)  # deep-node summaries use the same key
    keyed.rekey(None)
    assert keyed.root(0) == plain.root(0)


def test_replicas_with_one_key_find_and_repair_a_difference() -> None:
    a, b = storage(KEY), storage(KEY, skip=77)
    session = SyncSession(StoredReplica(a, 0), 0)
    request: bytes | None = session.start()
    while request is not None:
        response, _ = answer(lambda p: StoredReplica(b, 0), request)
        request = session.receive(response)
    assert session.stats.complete and session.stats.records_sent == 1
    assert a.root(0) == b.root(0)


async def test_agents_key_their_trees_with_the_cluster_secret_and_follow_a_rotation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    secret = [b"a" * 32]
    async with running(StoreSettings(partitions=4, sync_interval=0.5)) as c:
        stores = [await c.add(i, secret=lambda: secret[0]) for i in range(3)]
        await c.settle()
        for i in range(30):
            await stores[0].put(f"k{i}", b"v", "all")
        assert all(s.storage.fingerprint_key == derive_key(secret[0]) for s in stores)
        plain = KVStorage(None, stores[0]._partition_of)
        plain.apply(r for s in [stores[0]] for r in s.storage.scan("", 100))
        assert plain.root(0) != stores[0].storage.root(0)
        secret[0] = b"b" * 32
        await wait_until(
            lambda: all(s.storage.fingerprint_key == derive_key(b"b" * 32) for s in stores), 10
        )
        roots = {tuple(s.storage.root(p) for p in range(4)) for s in stores}
        assert len(roots) == 1


def test_the_cluster_secret_is_the_primary_key_of_the_agents_keyring() -> None:
    from gossip.runtime.agent import Agent
    from gossip.runtime.settings import AgentSettings
    from gossip.runtime.store.service import cluster_secret
    from gossip.security.keyring import Keyring
    from gossip.security.sealer import AesGcmSealer

    agent = Agent(AgentSettings(name="a", bind=("127.0.0.1", 0), api=None))
    assert cluster_secret(agent) is None
    keyring = Keyring([b"1" * 32, b"2" * 32])
    agent.set_sealer(AesGcmSealer(keyring, "c"))
    assert cluster_secret(agent) == b"1" * 32
    keyring.use(b"2" * 32)
    assert cluster_secret(agent) == b"2" * 32
