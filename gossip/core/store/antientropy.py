"""Anti-entropy between two replicas of one partition, as a pure state machine.

Rules: the initiator (`SyncSession`) sends its root; the responder (`answer`)
is stateless and answers every message from its own replica alone. Both
sides handle a message the same way (`reply_to`): apply the records in it,
return the records asked for, diff the entry lists against their own, and
for every tree node whose summary differs from theirs either send their
entries (when the node holds at most `leaf_size` of their entries, or it is a
full key hash) or expand it into its 16 children. Equal subtrees are never
descended, so two replicas in sync exchange one small message each way.
The session ends when a side has nothing left to say, or after `max_rounds`.

Before records go out, the replica screens them against what the peer said
of its copy (`Replica.screen`): records the peer deleted and purged are not
shipped back (gossip.core.store.tombstone_gc). Messages carry their sender's
copy (`sender`) so that each side can screen.

Every outgoing message stays within `max_bytes` (estimated while building);
what does not fit is dropped and found again by the next session, so a
session is bounded in size and rounds and the caller bounds it in time. The
one exception: a record bigger than the whole budget travels as the only
record of a message, which then takes nothing more (the caller keeps its
frame limit above budget plus the biggest record); so no record is ever stuck.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from gossip.core.store.merkle import (
    FANOUT,
    MAX_LEVEL,
    MerkleTree,
    Summary,
    node_range,
    split,
    summarize,
)
from gossip.core.store.record import ENTRY_SIZE, Entry, Record
from gossip.core.store.syncwire import SyncMessage, SyncWireError, decode, encode
from gossip.core.store.tombstone_gc import PeerCopy

DEFAULT_LEAF_SIZE = 16
DEFAULT_MAX_BYTES = 4 << 20
DEFAULT_MAX_ROUNDS = 24
_EXPANSION_COST = 2 + FANOUT * 12 + 12
_ENTRY_LIST_COST = 12


class Replica(Protocol):
    """One node's copy of one partition, as anti-entropy sees it."""

    @property
    def tree(self) -> MerkleTree: ...

    def entries(self, lo: int, hi: int, limit: int | None = None) -> list[Entry]:
        """Entries with lo <= khash <= hi, sorted by khash, at most `limit`."""
        ...

    def records(self, khashes: Sequence[int]) -> list[Record]:
        """The records whose key hashes are listed (missing ones are skipped)."""
        ...

    def apply(self, records: Sequence[Record], judged: int | None = None) -> int:
        """Merge records in (last writer wins); return how many changed something.
        `judged`: the purge floor of this copy that the sender screened them by (see
        `judging`), None when it did not."""
        ...

    def screen(self, records: Sequence[Record], peer: PeerCopy | None) -> list[Record]:
        """Of records the peer lacks or holds older, those that may be sent; the rest
        this replica judges deleted and removes."""
        ...

    def judging(self, peer: PeerCopy | None) -> int | None:
        """The purge floor of `peer`'s copy that `screen` judges records by (rule 2 of
        gossip.core.store.tombstone_gc), when it does; None when it does not."""
        ...


@dataclass
class Tally:
    records_sent: int = 0
    records_received: int = 0
    records_applied: int = 0
    truncated: bool = False


def node_summary(rep: Replica, level: int, prefix: int) -> Summary:
    tree = rep.tree
    if level <= tree.stored_depth:
        return tree.stored(level, prefix)
    return summarize(rep.entries(*node_range(level, prefix)))


def node_children(rep: Replica, level: int, prefix: int) -> list[Summary]:
    tree = rep.tree
    if level < tree.stored_depth:
        return tree.stored_children(level, prefix)
    return split(level, rep.entries(*node_range(level, prefix)))


class _Builder:
    """One outgoing message under a byte budget."""

    def __init__(
        self,
        rep: Replica,
        partition: int,
        leaf_size: int,
        max_bytes: int,
        peer: PeerCopy | None,
        sender: PeerCopy | None,
    ) -> None:
        self.rep = rep
        self.peer = peer
        self.out = SyncMessage(partition, sender=sender)
        self.leaf_size = leaf_size
        self.budget = max_bytes
        self.left = max_bytes
        self.tally = Tally()

    def _spend(self, cost: int) -> bool:
        if cost > self.left:
            self.tally.truncated = True
            return False
        self.left -= cost
        return True

    def push(self, records: Sequence[Record]) -> None:
        if records and self.out.judged is None:
            self.out.judged = self.rep.judging(self.peer)
        for r in self.rep.screen(records, self.peer) if records else ():
            size = r.size()
            if size > self.budget and not self.out.records and self.left > 0:
                self.left = 0  # too big for any message: it goes alone
            elif not self._spend(size):
                continue  # a smaller one behind it may still fit
            self.out.records.append(r)
            self.tally.records_sent += 1

    def want(self, khash: int) -> None:
        if self._spend(8):
            self.out.wants.append(khash)

    def differing(self, level: int, prefix: int, mine: Summary) -> None:
        """A node whose summaries differ: send its entries or its children."""
        if mine[1] <= self.leaf_size or level == MAX_LEVEL:
            if self._spend(_ENTRY_LIST_COST + ENTRY_SIZE * mine[1]):
                self.out.entries.append(
                    (level, prefix, self.rep.entries(*node_range(level, prefix)))
                )
        elif self._spend(_EXPANSION_COST):
            self.out.expansions.append((level, prefix, node_children(self.rep, level, prefix)))

    def compare_children(self, level: int, prefix: int, theirs: list[Summary]) -> None:
        mine = node_children(self.rep, level, prefix)
        for i in range(FANOUT):
            if mine[i] != theirs[i]:
                self.differing(level + 1, prefix * FANOUT + i, mine[i])

    def diff_entries(self, level: int, prefix: int, theirs: list[Entry]) -> None:
        """Push what they lack or hold older; want what we lack or hold older."""
        lo, hi = node_range(level, prefix)
        limit = max(1, self.left // 64)
        mine = self.rep.entries(lo, hi, limit)
        if len(mine) >= limit:  # only judge the part of the range we have read
            hi = mine[-1].khash
            self.tally.truncated = True
        ours = _by_hash(mine)
        other = _by_hash(e for e in theirs if lo <= e.khash <= hi)
        push: list[int] = []
        for khash in ours.keys() | other.keys():
            o, t = ours.get(khash), other.get(khash)
            if o == t:
                continue
            # Versions decide the direction; equal versions (different contents or
            # colliding keys) are swapped both ways and settled by the merge rule.
            mine_v = -1 if o is None else max(v for v, _ in o)
            theirs_v = -1 if t is None else max(v for v, _ in t)
            if mine_v > theirs_v:
                push.append(khash)
            elif theirs_v > mine_v:
                self.want(khash)
            else:
                push.append(khash)
                self.want(khash)
        if push:
            self.push(self.rep.records(push))


def _by_hash(entries: Iterable[Entry]) -> dict[int, tuple[tuple[int, int], ...]]:
    """key hash -> its (version, tag) pairs, sorted (more than one only on a hash collision)."""
    out: dict[int, tuple[tuple[int, int], ...]] = {}
    for e in entries:
        pair = (e.version, e.tag)
        seen = out.get(e.khash)
        out[e.khash] = (pair,) if seen is None else tuple(sorted((*seen, pair)))
    return out


def reply_to(
    rep: Replica,
    msg: SyncMessage,
    *,
    leaf_size: int = DEFAULT_LEAF_SIZE,
    max_bytes: int = DEFAULT_MAX_BYTES,
    sender: PeerCopy | None = None,
) -> tuple[SyncMessage, Tally]:
    """The message that answers `msg`, after applying what it carried; `sender`
    is this side's copy, sent along."""
    b = _Builder(rep, msg.partition, leaf_size, max_bytes, msg.sender, sender)
    if msg.records:
        b.tally.records_received = len(msg.records)
        b.tally.records_applied = rep.apply(msg.records, msg.judged)
    if msg.wants:
        b.push(rep.records(msg.wants))
    for level, prefix, entries in msg.entries:
        b.diff_entries(level, prefix, entries)
    if msg.root is not None and msg.root != rep.tree.root:
        b.differing(0, 0, rep.tree.root)
    for level, prefix, children in msg.expansions:
        b.compare_children(level, prefix, children)
    return b.out, b.tally


def answer(
    lookup: Callable[[int], Replica | None],
    payload: bytes,
    *,
    leaf_size: int = DEFAULT_LEAF_SIZE,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[bytes, Tally]:
    """The responder: one request in, one response out. Raises SyncWireError."""
    msg = decode(payload)
    rep = lookup(msg.partition)
    if rep is None:
        return encode(SyncMessage(msg.partition, error="not_replica")), Tally()
    out, tally = reply_to(rep, msg, leaf_size=leaf_size, max_bytes=max_bytes)
    return encode(out), tally


@dataclass
class SyncStats:
    bytes_sent: int = 0
    bytes_received: int = 0
    round_trips: int = 0
    records_sent: int = 0
    records_received: int = 0
    records_applied: int = 0
    complete: bool = False
    """Ended because both sides ran out of differences (not by a bound or error)."""
    truncated: bool = False
    error: str | None = None


class SyncSession:
    """The initiator: `start()`, then feed each response to `receive()` until it
    returns None; then read `stats`."""

    def __init__(
        self,
        rep: Replica,
        partition: int,
        *,
        leaf_size: int = DEFAULT_LEAF_SIZE,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_rounds: int = DEFAULT_MAX_ROUNDS,
        sender: PeerCopy | None = None,
    ) -> None:
        self.rep = rep
        self.sender = sender
        self.peer: PeerCopy | None = None
        """The responder's copy, as its first answer said."""
        self.partition = partition
        self.leaf_size = leaf_size
        self.max_bytes = max_bytes
        self.max_rounds = max_rounds
        self.stats = SyncStats()
        self.done = False

    def _send(self, msg: SyncMessage) -> bytes:
        payload = encode(msg)
        self.stats.bytes_sent += len(payload)
        return payload

    def start(self) -> bytes:
        return self._send(SyncMessage(self.partition, root=self.rep.tree.root, sender=self.sender))

    def receive(self, payload: bytes) -> bytes | None:
        """Handle a response; the next request, or None when the session is over."""
        if self.done:
            return None
        self.stats.bytes_received += len(payload)
        self.stats.round_trips += 1
        try:
            msg = decode(payload)
        except SyncWireError as exc:
            return self._finish(error=f"bad_response: {exc}")
        if msg.partition != self.partition:
            return self._finish(error="wrong_partition")
        if msg.error:
            return self._finish(error=msg.error)
        if msg.sender is not None:
            self.peer = msg.sender
        msg.sender = self.peer
        out, tally = reply_to(
            self.rep, msg, leaf_size=self.leaf_size, max_bytes=self.max_bytes, sender=self.sender
        )
        self.stats.records_sent += tally.records_sent
        self.stats.records_received += tally.records_received
        self.stats.records_applied += tally.records_applied
        self.stats.truncated |= tally.truncated
        if out.is_empty():
            self.stats.complete = not self.stats.truncated
            return self._finish()
        if self.stats.round_trips >= self.max_rounds:
            self.stats.truncated = True
            return self._finish()
        return self._send(out)

    def fail(self, reason: str) -> None:
        """The transport failed; the session is over."""
        self._finish(error=reason)

    def _finish(self, error: str | None = None) -> bytes | None:
        self.done = True
        self.stats.error = error
        return None
