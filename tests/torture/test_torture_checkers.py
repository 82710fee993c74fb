"""Each checker catches a deliberately broken build: proof that it can fail.

Every test runs the same small fault-free cluster, breaks one thing through the
harness's hook (called after a node is built, before it starts), and asserts
that the checker made for that thing reports it, naming the keys, operations,
items or members. The unbroken run passes every checker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import trio

from gossip.core.ownership.fencing import Fencing
from gossip.core.store.hlc import Timestamp
from gossip.core.store.record import Record
from gossip.testing.torture import checkers
from gossip.testing.torture.cluster import Cluster, Node
from gossip.testing.torture.config import TortureConfig
from gossip.testing.torture.run import Result, run_torture
from gossip.testing.torture.schedule import Schedule, Step

CONFIG = TortureConfig(
    duration=30.0, faults=(), rate=20.0, horizon=10.0, reap=8.0, owner_bound=10.0
)
KILL_N2 = (Step(2.0, "kill", 10.0, target="n2"),)
"""n2 holds items for seed 11: they move away while it is down and come back after."""


def _run(hook: Callable[[Cluster, Node], None], steps: tuple[Step, ...] = ()) -> Result:
    return run_torture(11, schedule=Schedule(11, CONFIG, steps), hook=hook)


async def _no_session(part: int, peer: str) -> None:
    """No anti-entropy session: roots checks (and the clock readings they carry) still
    run, so the store clocks agree, but no record ever moves between replicas."""
    await trio.lowlevel.checkpoint()


def _dropping(apply: Callable[..., int]) -> Callable[..., int]:
    """A storage apply that silently loses the writes of one key in ten or so (those
    whose name ends in 1), so that later writes of the key cannot hide the loss."""

    def broken(records: Sequence[Record], **kw: Any) -> int:
        kept = [r for r in records if not r.key.endswith("1")]
        return apply(kept, **kw) + len(records) - len(kept)  # "stored"

    return broken


def test_the_unbroken_cluster_passes_every_checker() -> None:
    result = run_torture(11, CONFIG)
    assert result.ok, {n: v.violations[:2] for n, v in result.verdicts.items() if not v.ok}
    assert result.figures["ok"] > 400


def test_lost_writes_catches_a_replica_that_drops_the_writes_of_some_keys() -> None:
    def hook(cluster: Cluster, node: Node) -> None:
        assert node.store is not None
        if node.name == "n2":  # drops them from clients, read repair and sync alike
            storage = node.store.storage
            storage.apply = _dropping(storage.apply)  # type: ignore[method-assign]

    verdict = _run(hook).verdicts["lost_writes"]
    assert not verdict.ok
    assert {v["replica"] for v in verdict.violations} == {"n2"}


def test_resurrections_catches_a_replica_that_ignores_deletes() -> None:
    def hook(cluster: Cluster, node: Node) -> None:
        assert node.store is not None
        if node.name == "n3":
            storage = node.store.storage
            apply = storage.apply

            def no_tombstones(records: Sequence[Record], **kw: Any) -> int:
                return apply([r for r in records if not r.deleted], **kw)

            storage.apply = no_tombstones  # type: ignore[method-assign]

    verdict = _run(hook).verdicts["resurrections"]
    assert not verdict.ok
    # Read repair spreads the old value from n3 to replicas that purged the tombstone.
    assert "n3" in {v.get("replica") for v in verdict.violations}


def test_read_your_writes_catches_a_coordinator_whose_clock_skips_the_hlc() -> None:
    def hook(cluster: Cluster, node: Node) -> None:
        store = node.store
        assert store is not None
        if node.name == "n1":
            # Stamps straight from a wall clock 5 s behind, ignoring the hybrid clock and the
            # client's session, and acknowledges a write even when a replica answers with a
            # newer version.
            def skewed(*_: object) -> Timestamp:
                return Timestamp(node.clock.wall_ms() - 5000, 0, node.name)

            store.stamp = skewed  # type: ignore[method-assign]
            store.stamp_after = skewed  # type: ignore[method-assign]
            once = store.coordinator._write_once

            async def blind(*args: Any) -> tuple[Record, None]:
                record, _ = await once(*args)
                return record, None

            store.coordinator._write_once = blind  # type: ignore[method-assign]

    verdict = _run(hook).verdicts["read_your_writes"]
    assert not verdict.ok
    assert {v["rule"] for v in verdict.violations} <= {"read_your_writes", "monotonic"}


def test_convergence_catches_replicas_that_never_sync() -> None:
    def hook(cluster: Cluster, node: Node) -> None:
        assert node.store is not None
        node.store.sync.sync = _no_session  # type: ignore[method-assign]
        if node.name == "n4":
            storage = node.store.storage
            storage.apply = _dropping(storage.apply)  # type: ignore[method-assign]

    verdict = _run(hook).verdicts["convergence"]
    assert not verdict.ok
    assert all("partition" in v for v in verdict.violations)


class _SlowWall:
    """The agent as the ownership service sees it, with a wall clock an hour behind."""

    def __init__(self, agent: Any) -> None:
        self._agent = agent

    def wall_ms(self) -> int:
        return int(self._agent.wall_ms()) - 3_600_000

    def __getattr__(self, name: str) -> Any:
        return getattr(self._agent, name)


class _DeafFencing(Fencing):
    """Fencing that never hears of tokens issued elsewhere (no hand-over notes)."""

    def hear(self, item: str, token: int) -> bool:
        return False


def test_ownership_catches_tokens_that_go_down() -> None:
    def hook(cluster: Cluster, node: Node) -> None:
        if node.name == "n2":  # takes its items back after the kill, with lower tokens
            assert node.ownership is not None
            node.ownership.host = _SlowWall(node.agent)
            node.ownership.ownership._fencing = _DeafFencing()

    verdict = _run(hook, KILL_N2).verdicts["ownership"]
    assert not verdict.ok
    assert {v["rule"] for v in verdict.violations} == {"token_went_down"}
    assert {v["node"] for v in verdict.violations} == {"n2"}


def test_ownership_catches_handlers_that_do_not_alternate() -> None:
    def hook(cluster: Cluster, node: Node) -> None:
        if node.name == "n2":
            own = node.ownership
            assert own is not None
            submit = own.handlers.submit

            def twice(nursery: trio.Nursery, job: Any) -> None:
                submit(nursery, job)
                if job.event == "acquired":
                    submit(nursery, job)  # the acquire handler runs a second time

            own.handlers.submit = twice  # type: ignore[method-assign]

    verdict = _run(hook).verdicts["ownership"]
    assert not verdict.ok
    assert {v["rule"] for v in verdict.violations} == {"handlers_alternate"}


def test_membership_catches_a_member_declared_dead_by_a_fault_nobody_scheduled() -> None:
    def hook(cluster: Cluster, node: Node) -> None:
        if node.name != "n3" or node.gen != 1:
            return
        net, ip = cluster.net, node.ip

        async def silently_cut() -> None:
            await trio.sleep(10.0)
            for other in cluster.nodes.values():
                if other is not node:
                    net.cut(ip, other.ip)
                    net.cut(other.ip, ip)
            await trio.sleep(15.0)
            net.heal()

        nursery = cluster._nursery
        assert nursery is not None
        nursery.start_soon(silently_cut)

    verdict = _run(hook).verdicts["membership"]
    assert not verdict.ok
    assert "n3" in {v["member"] for v in verdict.violations}


def test_checkers_read_only_acknowledged_promises() -> None:
    """A run where every write fails (no node ever answers) promises nothing."""

    def hook(cluster: Cluster, node: Node) -> None:
        store = node.store
        assert store is not None

        async def refuse(*args: Any) -> Record:
            raise RuntimeError("refused")

        store.put = refuse  # type: ignore[method-assign]
        store.delete = refuse  # type: ignore[method-assign]

    result = _run(hook)
    assert result.figures["fail"] > 0
    for name in ("lost_writes", "resurrections", "read_your_writes"):
        assert result.verdicts[name].ok


def test_membership_excuses_a_death_whose_accuser_a_fault_cut_off_and_nothing_else() -> None:
    """n4, isolated past the suspicion timeout, declares n1 dead; when the cut heals
    n2 takes that verdict from gossip. The fault touched n4, the accuser, so the
    death is the fault's doing; the same death from an untouched accuser is not."""
    isolate = (Step(10.0, "isolate", 26.0, target="n4"),)
    adopted = {"t": 36.2, "observer": "n2", "member": "n1", "accuser": "n4"}
    own = {"t": 36.2, "observer": "n2", "member": "n1", "accuser": "n3"}
    excused = checkers.membership([adopted], isolate, [], grace=30.0, restart_delay=5.0)
    assert excused.ok
    flagged = checkers.membership([own], isolate, [], grace=30.0, restart_delay=5.0)
    assert [v["accuser"] for v in flagged.violations] == ["n3"]


def test_resurrections_excuses_a_delete_whose_acknowledging_replica_was_wiped() -> None:
    """Seed 89 at --rate 150: a node cut off alone took a delete at `one`, then its
    disk was wiped, and the tombstone with it. Like a wiped write, that delete
    promises nothing more; the same delete without the wipe still counts."""
    from gossip.testing.torture.clients import Op

    replicas = ("n1", "n5", "n2")
    put = Op(1, 0, "put", "k", "quorum", "n5", 4.5, "v", "ok", 4.6, (1_000, 0, "n5"))
    put.replicas = replicas
    delete = Op(2, 0, "delete", "k", "one", "n2", 8.9, None, "ok", 8.9, (2_000, 0, "n2"))
    delete.replicas = replicas
    final: checkers.Final = {"k": {r: ((1_000, 0, "n5"), "v") for r in replicas}}
    wipe = (Step(24.7, "wipe", 5.5, target="n2"),)
    assert checkers.resurrections([put, delete], final, wipe).ok
    flagged = checkers.resurrections([put, delete], final)
    assert {v["replica"] for v in flagged.violations} == set(replicas)
