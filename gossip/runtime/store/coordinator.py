"""The request coordinator: any agent serves PUT/GET/DELETE for any key.

Rules:
- Quorum is taken over the configured replica count R (capped by the members
  this agent knows, whatever their state, so only a cluster that is really
  smaller than R uses fewer): one needs 1, quorum R//2+1, all R. A side that
  reaches fewer of the key's replicas than that answers at once with
  `NotEnoughReplicas` naming needed and reachable, instead of answering alone.
  So does an agent that sees no majority of the members it has known
  (gossip.core.store.majority): `quorum` and `all` need it, `one` does not. Its
  replicas answer reads as pending then, so they do not count elsewhere either.
- A write is stamped with the hybrid clock (above the client's session version
  `after`, when it passes one) and sent to every replica of the key at once; it
  is acknowledged when `needed` replicas stored it, pending ones included (they
  hold the write durably). A replica that refuses because
  it is leaving is replaced by the members that take its partitions over.
- A write is never acknowledged while an answering replica holds a newer
  version of the key (or refused it below the partition's purge watermark):
  the coordinator stamps it again above that version and resends it, at most
  RESTAMPS times, then fails with `WriteHidden`. A version stamped more than
  the clock's max offset ahead of this node's wall clock is implausible: a
  replica that reports one is not counted (for a write: it will hide the
  write; for a read: its record would outrank every honest write), and the
  reason is logged.
- A read asks every replica and merges every answer (last writer wins), but
  counts toward the quorum only replicas already filled with the partition's
  data; once enough count, the others get as long again (at least fanout.LINGER_S),
  since views differ for a moment after a membership change and the writer's
  replicas need not be the reader's. When pending answers are all that is
  missing it nudges anti-entropy and asks again within the timeout. For a
  while after a placement change it also asks the key's earlier replicas,
  which hold its data until their hand-off ends: one that still holds the
  partition counts, one that dropped it answers as pending. Read repair
  (writing the winner to the replicas that answered older or nothing)
  completes before the answer, and the answer fails unless `needed` filled
  replicas hold the winner: so successive quorum reads never go back.
- Replicas still answering finish in the background. A refusal carries a
  reason; storage reasons (no_space, io_error) reach the client.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

import structlog
import trio

from gossip.core.store.hlc import Timestamp
from gossip.core.store.majority import Majority
from gossip.core.store.record import Record, RecordError, merge, validate_key, validate_value
from gossip.core.store.replica_ops import (
    LEAVING,
    GetAnswer,
    KvOp,
    KvOpError,
    PutAnswer,
    decode_get_answer,
    decode_put_answer,
)
from gossip.runtime.store.fanout import Answer, Replicas, fan_out

CONSISTENCY_LEVELS = ("one", "quorum", "all")
RESTAMPS = 3
VERSION_AHEAD = "version_ahead"
STORAGE_REASONS = ("no_space", "io_error")
FILL_RETRY_S = 0.05
log = structlog.get_logger("gossip.kv")


class NotEnoughReplicas(Exception):
    def __init__(
        self,
        op: str,
        consistency: str,
        acks: int,
        needed: int,
        replicas: int,
        *,
        reachable: int | None = None,
        reasons: Sequence[str] = (),
    ) -> None:
        if reachable is not None and reachable < needed:
            text = f"{reachable} of {replicas} replicas reachable, {needed} needed"
        else:
            text = f"{acks} of {replicas} replicas answered in time, {needed} needed"
        why = sorted(set(reasons))
        tail = f" ({'; '.join(why)[:300]})" if why else ""
        super().__init__(f"{op} at consistency {consistency}: {text}{tail}")
        self.acks, self.needed, self.replicas = acks, needed, replicas
        self.reachable = replicas if reachable is None else reachable
        self.reasons = why

    @property
    def storage_reason(self) -> str | None:
        """no_space or io_error when a replica's storage refused the request."""
        for kind in STORAGE_REASONS:
            if any(r.startswith(kind) for r in self.reasons):
                return kind
        return None


class NoMajority(NotEnoughReplicas):
    """This agent is cut off from most of the members it knows: a quorum here could
    be a minority side's, blind to what the majority acknowledged."""

    def __init__(self, op: str, consistency: str, majority: Majority) -> None:
        Exception.__init__(self, f"{op} at consistency {consistency}: {majority.describe()}")
        self.acks, self.needed, self.replicas = 0, majority.needed, majority.known
        self.reachable = majority.seen
        self.reasons = ["no_majority"]


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


class Cluster(Replicas, Protocol):
    """What the coordinator needs from the store service."""

    def replicas_of_key(self, key: str) -> Sequence[str]: ...
    def majority(self) -> Majority:
        """Whether this agent sees most of the members it has known."""
        ...

    def replication(self) -> int:
        """R: the configured replica count, capped by the members known."""
        ...

    def replacements(self, key: str, gone: Collection[str]) -> Sequence[str]:
        """The key's replicas once the members `gone` have left."""
        ...

    def earlier_replicas(self, key: str) -> Sequence[str]:
        """Live members that replicated the key before a recent placement change
        and no longer do (empty when there was none)."""
        ...

    def fill_soon(self) -> None:
        """Pending replicas exist: run anti-entropy now rather than at the next period."""
        ...

    def stamp(self) -> Timestamp: ...
    def stamp_after(self, newer: tuple[int, int]) -> Timestamp: ...
    def plausible(self, wall_ms: int) -> bool: ...


def _get_answer(a: Answer) -> GetAnswer | None:
    if a.parsed is None and a.payload is not None:
        with contextlib.suppress(KvOpError):
            a.parsed = decode_get_answer(a.payload)
    return a.parsed if isinstance(a.parsed, GetAnswer) else None


def _put_answer(a: Answer) -> PutAnswer:
    """The decoded acknowledgement (KvOpError: a refusal or garbage); decoded once."""
    if isinstance(a.parsed, PutAnswer):
        return a.parsed
    if a.payload is None:
        raise KvOpError("no answer")
    a.parsed = decode_put_answer(a.payload)
    return a.parsed


def _filled(a: Answer) -> bool:
    got = _get_answer(a)
    return got is not None and not got.pending


def _counted(replicas: Sequence[str]) -> Callable[[Answer], bool]:
    """When to stop waiting: filled answers of current replicas count one each and
    every answer of an earlier replica counts too, but `needed` was raised by
    their number, so all of them are awaited."""

    def counts(a: Answer) -> bool:
        return a.replica not in replicas or _filled(a)

    return counts


class Coordinator:
    def __init__(self, cluster: Cluster, timeout: float) -> None:
        self.cluster = cluster
        self.timeout = timeout

    def _plan(self, op: str, key: str, consistency: str) -> tuple[list[str], int, int]:
        """The key's replicas, R and the answers needed; a minority side fails here."""
        if consistency != "one":
            majority = self.cluster.majority()
            if not majority.quorate:
                raise NoMajority(op, consistency, majority)
        replicas = list(self.cluster.replicas_of_key(key))
        r = self.cluster.replication()
        needed = max(1, needed_for(consistency, r))
        if len(replicas) < needed:
            raise NotEnoughReplicas(op, consistency, 0, needed, r, reachable=len(replicas))
        return replicas, r, needed

    async def write(
        self,
        key: str,
        value: bytes | None,
        consistency: str,
        after: tuple[int, int] | None = None,
    ) -> Record:
        """Write `value` (None: delete). `after`: the (wall, counter) of the greatest version
        the client has seen; the write is stamped above it, so a client's later write wins
        over its earlier ones whatever the clocks of the agents it went through."""
        validate_key(key)
        if value is not None:
            validate_value(value)
        if after is None:
            stamp = self.cluster.stamp()
        elif self.cluster.plausible(after[0]):
            stamp = self.cluster.stamp_after(after)
        else:
            raise RecordError(
                f"after={after[0]}.{after[1]} is further ahead of this agent's store clock"
                " than the max clock offset: not a version an agent stamped"
            )
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
        op = "delete" if value is None else "put"
        replicas, r, needed = self._plan(op, key, consistency)
        record = Record(key, value, stamp)
        put = KvOp("put", record=record)
        answers = await fan_out(
            self.cluster, replicas, put, needed, self.timeout, _put_ok, valid=self._ahead
        )
        acks, leaving, reasons, hidden = _tally(answers)
        if hidden is None and leaving and acks < needed:
            # A leaving replica refused: its successors take the write instead.
            extra = [n for n in self.cluster.replacements(key, leaving) if n not in replicas]
            more = await fan_out(
                self.cluster, extra, put, needed - acks, self.timeout, _put_ok, valid=self._ahead
            )
            more_acks, _, more_reasons, more_hidden = _tally(more)
            acks += more_acks
            reasons += more_reasons
            hidden = more_hidden
        if hidden is not None:
            return record, hidden
        if acks < needed:
            raise NotEnoughReplicas(op, consistency, acks, needed, r, reasons=reasons)
        return record, None

    async def read(self, key: str, consistency: str) -> Record | None:
        """The winning record (a tombstone for a deleted key), or None."""
        validate_key(key)
        deadline = trio.current_time() + self.timeout
        while True:
            replicas, r, needed = self._plan("get", key, consistency)
            seen, counted, waiting = await self._ask(key, replicas, needed)
            if len(counted) >= needed:
                break
            left = deadline - trio.current_time()
            if not waiting or left <= FILL_RETRY_S:
                raise NotEnoughReplicas("get", consistency, len(counted), needed, r)
            self.cluster.fill_soon()  # pending replicas answered: let anti-entropy fill them
            await trio.sleep(FILL_RETRY_S)
        winner: Record | None = None
        for rec in seen.values():
            winner = merge(winner, rec)
        if winner is None:
            return None
        holders = {name for name in counted if seen[name] == winner}
        # Only current replicas are repaired: a former one keeps no new copies.
        stale = [name for name, rec in seen.items() if rec != winner and name in replicas]
        if stale:
            holders |= await self._repair(winner, stale) & counted
        if len(holders) < needed:
            raise NotEnoughReplicas("get", consistency, len(holders), needed, r)
        return winner

    def _ahead(self, a: Answer) -> str | None:
        """A replica that holds a version stamped beyond the max clock offset will
        hide the write: it does not count as an acknowledgement."""
        try:
            newer = _put_answer(a).newer
        except KvOpError:
            return None  # reported by the caller
        if newer is not None and not self.cluster.plausible(newer[0]):
            return VERSION_AHEAD
        return None

    def _implausible(self, a: Answer) -> str | None:
        """A read answer whose record is stamped beyond the max clock offset would
        outrank every honest write: it does not count."""
        got = _get_answer(a)
        if got is None:
            return None  # reported by the caller
        if got.record is not None and not self.cluster.plausible(got.record.version.wall):
            return VERSION_AHEAD
        return None

    async def _ask(
        self, key: str, replicas: list[str], needed: int
    ) -> tuple[dict[str, Record | None], set[str], bool]:
        """Every answer's record, the filled replicas that answered, and whether
        a pending (not leaving) replica answered."""
        get = KvOp("get", key=key)
        earlier = [n for n in self.cluster.earlier_replicas(key) if n not in replicas]
        asked = replicas + earlier
        # Earlier replicas still holding the partition count like current ones; all of
        # their answers are awaited, since they may hold what new replicas lack.
        answers = await fan_out(
            self.cluster,
            asked,
            get,
            needed + len(earlier),
            self.timeout,
            _counted(replicas),
            valid=self._implausible,
            linger=True,
        )
        leavers = {a.replica for a in answers if (g := _get_answer(a)) is not None and g.leaving}
        if leavers:
            extra = [n for n in self.cluster.replacements(key, leavers) if n not in asked]
            answers += await fan_out(
                self.cluster, extra, get, len(extra), self.timeout, _filled, valid=self._implausible
            )
        seen: dict[str, Record | None] = {}
        counted: set[str] = set()
        waiting = False
        for a in answers:
            got = _get_answer(a)
            if got is None:
                if a.payload is not None:
                    log.warning("kv_read_refused", replica=a.replica, reason="bad answer")
                elif a.error == VERSION_AHEAD:
                    log.warning("kv_read_refused", replica=a.replica, reason=VERSION_AHEAD)
                continue
            seen[a.replica] = got.record
            if not got.pending:
                counted.add(a.replica)
            waiting |= got.pending and not got.leaving and a.replica not in earlier
        return seen, counted, waiting

    async def _repair(self, winner: Record, stale: list[str]) -> set[str]:
        """Write the winner to the replicas that answered older; the ones that took it."""
        answers = await fan_out(
            self.cluster, stale, KvOp("put", record=winner), len(stale), self.timeout
        )
        repaired = {a.replica for a in _acked(answers)}
        log.info(
            "kv_repaired", key=winner.key, replicas=sorted(repaired), version=str(winner.version)
        )
        return repaired


def _put_ok(a: Answer) -> bool:
    """A replica stored the write, or answered with the newer version that hides it
    (a refusal is an answer, not an acknowledgement)."""
    try:
        _put_answer(a)
    except KvOpError:
        return False
    return True


def _acked(answers: list[Answer]) -> list[Answer]:
    return [a for a in answers if _put_ok(a)]


def _tally(answers: list[Answer]) -> tuple[int, set[str], list[str], tuple[int, int] | None]:
    """Acknowledgements, the replicas that refused as leaving, refusal reasons, and
    the newest version that hides the write (None: nothing hides it)."""
    acks = 0
    leaving: set[str] = set()
    reasons: list[str] = []
    hidden: tuple[int, int] | None = None
    for a in answers:
        if a.payload is None:
            if a.error == VERSION_AHEAD:
                log.warning("kv_write_refused", replica=a.replica, reason="newer_version_ahead")
            continue
        try:
            newer = _put_answer(a).newer
            acks += 1
            if newer is not None and (hidden is None or newer > hidden):
                hidden = newer
        except KvOpError as exc:
            if str(exc) == LEAVING:
                leaving.add(a.replica)
            else:
                reasons.append(str(exc))
                log.warning("kv_write_refused", replica=a.replica, reason=str(exc))
    return acks, leaving, reasons, hidden


def parse_consistency(value: str | None) -> str:
    value = value or "quorum"
    if value not in CONSISTENCY_LEVELS:
        raise ValueError(f"consistency must be one of {', '.join(CONSISTENCY_LEVELS)}")
    return value
