"""The request coordinator: any agent serves PUT/GET/DELETE for any key.

Rules: the coordinator stamps a write with its hybrid clock, sends it to every
replica of the key's partition at once and answers as soon as the consistency
level is met (one: 1, quorum: n//2+1, all: n, where n is the partition's
replica count in the current view). Replicas still answering finish in the
background. Reads ask every replica, merge the answers that arrive (last
writer wins) and, when answers disagree, write the winner back to the stale
replicas (read repair) in the background. Not enough answers within the
timeout is `NotEnoughReplicas`, which names how many answered.
A write is never acknowledged while an answering replica holds a newer version
of the key (or refused it below the partition's purge watermark): the
coordinator stamps it again above that version and resends it, at most
RESTAMPS times, then fails with `WriteHidden`. A version stamped more than the
clock's max offset ahead of this node's wall clock is implausible: a replica that
reports one is not counted (for a write: it will hide the write; for a read:
its record would outrank every honest write), and the reason is logged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog
import trio

from gossip.core.store.hlc import Timestamp
from gossip.core.store.record import Record, merge, validate_key, validate_value
from gossip.core.store.replica_ops import KvOp, KvOpError, decode_get_result, decode_put_answer

CONSISTENCY_LEVELS = ("one", "quorum", "all")
RESTAMPS = 3
VERSION_AHEAD = "version_ahead"
log = structlog.get_logger("gossip.kv")


class NotEnoughReplicas(Exception):
    def __init__(self, op: str, consistency: str, acks: int, needed: int, replicas: int) -> None:
        super().__init__(
            f"{op} at consistency {consistency}: {acks} of {replicas} replicas answered in time,"
            f" {needed} needed"
        )
        self.acks, self.needed, self.replicas = acks, needed, replicas


class WriteHidden(Exception):
    """Replicas kept answering with a newer version than every stamp tried."""

    def __init__(self, key: str, newer: tuple[int, int]) -> None:
        super().__init__(
            f"write of {key!r} not acknowledged: replicas hold a newer version"
            f" ({newer[0]}.{newer[1]}) after {RESTAMPS} new stamps"
        )
        self.newer = newer


def needed_for(consistency: str, n: int) -> int:
    if consistency == "one":
        return min(1, n)
    if consistency == "quorum":
        return n // 2 + 1 if n else 0
    if consistency == "all":
        return n
    raise ValueError(f"consistency must be one of {', '.join(CONSISTENCY_LEVELS)}")


class Cluster(Protocol):
    """What the coordinator needs from the store service."""

    def replicas_of_key(self, key: str) -> Sequence[str]: ...
    def stamp(self) -> Timestamp: ...
    def stamp_after(self, newer: tuple[int, int]) -> Timestamp: ...
    def plausible(self, wall_ms: int) -> bool: ...
    async def call(self, replica: str, op: KvOp) -> bytes: ...
    def spawn(self, fn: Callable[[], Awaitable[None]]) -> None: ...


@dataclass
class Answer:
    replica: str
    payload: bytes | None
    error: str | None


async def fan_out(
    cluster: Cluster,
    replicas: Sequence[str],
    op: KvOp,
    needed: int,
    limit_s: float,
    valid: Callable[[bytes], str | None] | None = None,
) -> list[Answer]:
    """Send `op` to every replica; return once `needed` succeeded, all answered,
    or the timeout passed. Calls still running go on in the background. `valid`
    names what is wrong with an answer (None: nothing), which then counts as failed."""
    send, recv = trio.open_memory_channel[Answer](len(replicas))

    def task(name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            answer = Answer(name, None, "timeout")
            with trio.move_on_after(limit_s):
                try:
                    payload = await cluster.call(name, op)
                    wrong = None if valid is None else valid(payload)
                    answer = Answer(name, None if wrong else payload, wrong)
                except Exception as exc:  # any failure of one replica is a missing answer
                    answer = Answer(name, None, f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
                send.send_nowait(answer)  # the coordinator may have answered already

        return run

    for name in replicas:
        cluster.spawn(task(name))
    answers: list[Answer] = []
    ok = 0
    with recv, trio.move_on_after(limit_s + 0.5):
        while ok < needed and len(answers) < len(replicas):
            answer = await recv.receive()
            answers.append(answer)
            ok += answer.error is None
    return answers


class Coordinator:
    def __init__(self, cluster: Cluster, timeout: float) -> None:
        self.cluster = cluster
        self.timeout = timeout

    async def write(self, key: str, value: bytes | None, consistency: str) -> Record:
        validate_key(key)
        if value is not None:
            validate_value(value)
        stamp = self.cluster.stamp()
        for _ in range(RESTAMPS):
            record, newer = await self._write_once(key, value, consistency, stamp)
            if newer is None:
                return record
            log.info("kv_write_restamped", key=key, version=str(stamp), newer=list(newer))
            stamp = self.cluster.stamp_after(newer)
        record, newer = await self._write_once(key, value, consistency, stamp)
        if newer is not None:
            raise WriteHidden(key, newer)
        return record

    async def _write_once(
        self, key: str, value: bytes | None, consistency: str, stamp: Timestamp
    ) -> tuple[Record, tuple[int, int] | None]:
        """One fan-out of the write; (record, the newest version that hides it)."""
        replicas = self.cluster.replicas_of_key(key)
        needed = needed_for(consistency, len(replicas))
        record = Record(key, value, stamp)
        answers = await fan_out(
            self.cluster, replicas, KvOp("put", record=record), needed, self.timeout, self._ahead
        )
        acks = 0
        hidden: tuple[int, int] | None = None
        for a in answers:
            if a.error == VERSION_AHEAD:
                log.warning("kv_write_refused", replica=a.replica, reason="newer_version_ahead")
            if a.payload is not None:
                try:
                    _, newer = decode_put_answer(a.payload)
                    acks += 1
                except KvOpError as exc:
                    log.warning("kv_write_refused", replica=a.replica, reason=str(exc))
                    continue
                if newer is not None and (hidden is None or newer > hidden):
                    hidden = newer
        if hidden is not None:
            return record, hidden
        if acks < needed or not replicas:
            op = "delete" if value is None else "put"
            raise NotEnoughReplicas(op, consistency, acks, max(needed, 1), len(replicas))
        return record, None

    async def read(self, key: str, consistency: str) -> Record | None:
        """The winning record (a tombstone for a deleted key), or None."""
        validate_key(key)
        replicas = self.cluster.replicas_of_key(key)
        needed = needed_for(consistency, len(replicas))
        answers = await fan_out(
            self.cluster, replicas, KvOp("get", key=key), needed, self.timeout, self._implausible
        )
        seen: dict[str, Record | None] = {}
        for a in answers:
            if a.payload is not None:
                try:
                    seen[a.replica] = decode_get_result(a.payload)
                except KvOpError as exc:
                    log.warning("kv_read_refused", replica=a.replica, reason=str(exc))
            elif a.error == VERSION_AHEAD:
                log.warning("kv_read_refused", replica=a.replica, reason=VERSION_AHEAD)
        if len(seen) < needed or not replicas:
            raise NotEnoughReplicas("get", consistency, len(seen), max(needed, 1), len(replicas))
        winner: Record | None = None
        for r in seen.values():
            winner = merge(winner, r)
        if winner is not None:
            stale = [name for name, r in seen.items() if r != winner]
            if stale:
                self.cluster.spawn(self._repair(winner, stale))
        return winner

    def _ahead(self, payload: bytes) -> str | None:
        """A replica that holds a version stamped beyond the max clock offset will
        hide the write: it does not count as an acknowledgement."""
        try:
            _, newer = decode_put_answer(payload)
        except KvOpError:
            return None  # reported by the caller
        if newer is not None and not self.cluster.plausible(newer[0]):
            return VERSION_AHEAD
        return None

    def _implausible(self, payload: bytes) -> str | None:
        """A read answer whose record is stamped beyond the max clock offset would
        outrank every honest write: it does not count."""
        try:
            got = decode_get_result(payload)
        except KvOpError:
            return None  # reported by the caller
        if got is not None and not self.cluster.plausible(got.version.wall):
            return VERSION_AHEAD
        return None

    def _repair(self, winner: Record, stale: list[str]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            answers = await fan_out(
                self.cluster, stale, KvOp("put", record=winner), len(stale), self.timeout
            )
            repaired = [a.replica for a in answers if a.error is None]
            log.info("kv_repaired", key=winner.key, replicas=repaired, version=str(winner.version))

        return run


def parse_consistency(value: str | None) -> str:
    value = value or "quorum"
    if value not in CONSISTENCY_LEVELS:
        raise ValueError(f"consistency must be one of {', '.join(CONSISTENCY_LEVELS)}")
    return value
