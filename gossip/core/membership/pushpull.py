"""Push-pull state sync over streams, joining, and reconnecting.

Rules:
- A push-pull is one stream request (our whole table) and one response (the
  peer's). The responder merges the request before it builds its reply, so
  one exchange lets both sides refute what the other believed about them.
  A remote `dead` only makes us suspect; our own timers decide, but one
  about a member we already suspect at that incarnation settles our
  suspicion at its minimum timeout (suspecting.py). A suspicion taken from
  a remote table is hearsay: told to the suspect, not gossiped. Entries
  byte-equal to our own belief are skipped unparsed (staterows.py).
- Join: push-pull with every seed; the first success emits Joined. Until one
  succeeds the seeds are retried as joinretry.py says (1 s doubling up to
  the reconnect interval, jittered); seeds known by name are resolved again
  first (ResolveSeeds, answered with set_seeds).
- Settling pulls: 0.5-1 s after joining, and after answering a join that
  taught us a member, a pull-only sync with a random member fills in what
  was gossiped while others did not know us, or we them. While our member
  count keeps growing between pulls (many nodes are joining at once) the
  pull is repeated, up to SETTLE_PULLS in a row, so nobody waits for the
  periodic push-pull to fill what gossip missed; a pull during which
  nothing grew ends the series, and a failed one tries another member.
  Only new members count: under heavy loss the states of known members
  churn all the time, and pulling would only spread that. Under a gossip
  backlog, the members a settling pull teaches are not queued for gossip
  as well (the pulls are spreading them).
- Periodic sync with one random alive member every push-pull interval,
  scaled up for clusters above 32 members (memberlist's pushPullScale).
- Reconnect (how partitions heal): every ~reconnect_interval (jittered) try
  one random member we declared dead within reconnect_timeout, backing off
  per member on failure; and push-pull with a seed that is not an alive
  member of our table (it is in another cluster, e.g. after a split at start);
  with named seeds, a node left alone asks for them resolved again instead.

The Syncer is a part the node owns: it holds the streams in flight (the
probe's stream ping among them, whose outcome it hands back), the seeds,
the join, settle and reconnect state, and its timers. A remote table is
applied through the node's update rules (`merge`, which the node passes in).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gossip.core.membership import outputs as out
from gossip.core.membership.broadcast import BroadcastQueue
from gossip.core.membership.config import Config
from gossip.core.membership.counters import CountFn
from gossip.core.membership.joinretry import join_retry_delay, join_retry_wanted
from gossip.core.membership.members import ALIVE_ONLY, SUSPECT, MemberTable
from gossip.core.membership.messages import Ack, Ping, StateEntry, SyncRows, UserEvent
from gossip.core.membership.staterows import StateRows
from gossip.core.membership.timers import TimerHeap
from gossip.core.membership.wire import Codec
from gossip.core.membership.wireschema import VersionRefused, WireError
from gossip.core.types import Address, MemberInfo

SETTLE_DELAY = 0.5
"""Seconds (times 1..2) after joining before the settling pull, and between pulls."""
SETTLE_PULLS = 10
"""At most this many settling pulls in a row (see the rules above)."""


@dataclass(slots=True)
class StreamState:
    kind: str  # "join" | "push_pull" | "settle" | "reconnect" | "ping"
    peer: Address
    bytes_sent: int
    probe_seq: int = 0
    member: str = ""
    members_before: int = 0
    """For a settling pull: our member count when the previous one opened."""


@dataclass(slots=True)
class ReconnectState:
    address: Address
    next_try: float
    backoff: float
    until: float


MergeFn = Callable[[float, list[tuple[bytes, StateEntry]], bool], None]
EventsFn = Callable[[float, list[UserEvent]], None]
"""sync_events(now, events): the node applies a peer's recent user events."""
"""merge(now, entries, gossip_new): the node applies a remote table's news."""


class Syncer:
    """Push-pull, join, settling pulls and reconnects of one node."""

    def __init__(
        self,
        name: str,
        address: Address,
        cfg: Config,
        *,
        rng: random.Random,
        table: MemberTable,
        timers: TimerHeap,
        codec: Codec,
        rows: StateRows,
        queue: BroadcastQueue,
        emit: Callable[[out.Output], None],
        count: CountFn,
        reject: Callable[[Address, str], None],
        merge: MergeFn,
        ping_answered: Callable[[float, int], None],
        ping_failed: Callable[[float, int], None],
        recent_events: Callable[[], list[bytes]] = list,
        sync_events: EventsFn | None = None,
    ) -> None:
        self._name = name
        self._address = address
        self._cfg = cfg
        self._rng = rng
        self._table = table
        self._timers = timers
        self._codec = codec
        self._rows = rows
        self._queue = queue
        self._emit = emit
        self._count = count
        self._reject = reject
        self._merge = merge
        self._ping_answered = ping_answered
        self._ping_failed = ping_failed
        self._recent_events = recent_events
        self._sync_events = sync_events
        self._stream_seq = 0
        self._streams: dict[int, StreamState] = {}
        self._reconnects: dict[str, ReconnectState] = {}
        self._seeds: list[Address] = []
        self._named_seeds = False
        """The shell resolves seed names: ask it (ResolveSeeds) before retrying."""
        self._alive_cache: tuple[int, set[Address]] = (-1, set())
        self._started = False
        self._leaving = False
        self._joined = False
        self._settle_pending = False
        self._settle_budget = 0
        self._settle_mark = 0

    # ---- driven by the node ------------------------------------------------------

    def start(self, now: float, seeds: Sequence[Address], named_seeds: bool) -> None:
        """Start the periodic timers and join `seeds` (see Node.start)."""
        self._started = True
        cfg, rng = self._cfg, self._rng
        self._timers.add(now + rng.uniform(0.5, 1.0) * cfg.push_pull_interval, self._push_pull_tick)
        self._timers.add(now + rng.uniform(0.5, 1.5) * cfg.reconnect_interval, self._reconnect_tick)
        self._seeds = [s for s in seeds if s != self._address]
        self._named_seeds = named_seeds
        self.join(now, self._seeds)
        if self._seeds or named_seeds:
            delay = join_retry_delay(0, cfg.reconnect_interval, rng)
            self._timers.add(now + delay, self._retry_join, 1)

    def leave(self) -> None:
        """No more syncs, pulls, reconnects or join retries."""
        self._leaving = True

    def member_died(self, now: float, info: MemberInfo) -> None:
        """`info` was declared dead: try it again at reconnect ticks, for a while."""
        cfg = self._cfg
        self._reconnects[info.name] = ReconnectState(
            info.address,
            now + cfg.reconnect_interval,
            cfg.reconnect_interval,
            now + cfg.reconnect_timeout,
        )

    def forget(self, name: str) -> None:
        """`name` is alive again, or left: no reconnects to it."""
        self._reconnects.pop(name, None)

    def join(self, now: float, seeds: Sequence[Address]) -> None:
        """Push-pull with every seed; the first success emits Joined."""
        for seed in seeds:
            if seed != self._address:
                self._open_push_pull(now, seed, kind="join", join=True)

    def set_seeds(self, now: float, seeds: Sequence[Address]) -> None:
        """The seeds resolved again (the answer to ResolveSeeds): kept for later
        retries, and joined at once while not joined yet or alone."""
        self._seeds = [s for s in seeds if s != self._address]
        if not self._leaving and (not self._joined or self._alone()):
            self.join(now, self._seeds)

    def _alone(self) -> bool:
        return self._table.live <= 1

    # ---- streams: push-pull and the fallback ping -----------------------------------

    def _open_stream(
        self, now: float, to: Address, payload: bytes, stream: StreamState, timeout: float
    ) -> None:
        self._stream_seq += 1
        stream.bytes_sent = len(payload)
        self._streams[self._stream_seq] = stream
        self._emit(out.OpenStream(to, self._stream_seq, payload, timeout))

    def open_ping(
        self, now: float, to: Address, payload: bytes, probe_seq: int, timeout: float
    ) -> None:
        """The probe's stream ping; its outcome goes to ping_answered/ping_failed."""
        stream = StreamState("ping", to, 0, probe_seq=probe_seq)
        self._open_stream(now, to, payload, stream, timeout)

    def _open_push_pull(
        self,
        now: float,
        to: Address,
        *,
        kind: str,
        join: bool,
        member: str = "",
        pull_only: bool = False,
        members_before: int = 0,
    ) -> None:
        rows = [] if pull_only else self._rows.wrapped(self._table)
        events = [] if pull_only else self._recent_events()
        payload = self._codec.sync_frame(join, rows, events)
        self._count("push_pull_bytes_out", len(payload))
        stream = StreamState(kind, to, 0, member=member, members_before=members_before)
        self._open_stream(now, to, payload, stream, self._cfg.stream_timeout)

    def handle_stream_request(self, now: float, src: Address, payload: bytes) -> bytes | None:
        """Answer one request frame (push-pull or ping); None closes the stream."""
        try:
            msg = self._codec.decode_sync_frame(payload)
            news = self._news(msg.rows) if type(msg) is SyncRows else []
            events = self._codec.parse_events(msg.events) if type(msg) is SyncRows else []
        except WireError as exc:
            self._reject(src, exc.reason)
            # A requester in a version we do not speak gets an empty reply in
            # ours, so that it too sees why and says so (versions.py).
            return self._codec.sync_frame(None, []) if isinstance(exc, VersionRefused) else None
        if not self._started:
            return None
        if isinstance(msg, Ping):
            return self._codec.reply_frame(Ack(msg.seq)) if msg.target == self._name else None
        if isinstance(msg, SyncRows) and msg.join is not None:
            self._count("push_pull_bytes_in", len(payload))
            known = len(self._table)
            self._merge(now, news, True)
            self._apply_events(now, events)
            if msg.join and len(self._table) > known:
                self._settle_soon(now)
            rows = self._rows.wrapped(self._table)
            reply = self._codec.sync_frame(None, rows, self._recent_events(), reply=True)
            self._count("push_pull_bytes_out", len(reply))
            self._emit(
                out.PushPullCompleted(src, len(msg.rows), len(reply), len(payload), msg.join)
            )
            return reply
        self._reject(src, "unexpected_kind")
        return None

    def receive_stream_response(self, now: float, stream_id: int, payload: bytes) -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is None:
            return
        try:
            msg = self._codec.decode_sync_frame(payload)
            news = self._news(msg.rows) if type(msg) is SyncRows else []
            events = self._codec.parse_events(msg.events) if type(msg) is SyncRows else []
        except WireError as exc:
            self._reject(stream.peer, exc.reason)
            self._stream_lost(now, stream)
            return
        if stream.kind == "ping":
            if isinstance(msg, Ack) and msg.seq == stream.probe_seq:
                self._ping_answered(now, msg.seq)
            else:
                self._ping_failed(now, stream.probe_seq)
            return
        if not isinstance(msg, SyncRows) or msg.join is not None:
            self._reject(stream.peer, "unexpected_kind")
            self._stream_lost(now, stream)
            return
        self._count("push_pull_bytes_in", len(payload))
        # Under a backlog (many nodes joining at once) the members a settling
        # pull teaches us are not queued for gossip as well: the pulls are
        # spreading them, and gossip has no room to spare.
        quiet = stream.kind == "settle" and self._queue.backlogged
        self._merge(now, news, not quiet)
        self._apply_events(now, events)
        self._emit(
            out.PushPullCompleted(
                stream.peer,
                len(msg.rows),
                stream.bytes_sent,
                len(payload),
                stream.kind == "join",
            )
        )
        self._reconnects.pop(stream.member, None)
        if stream.kind == "join" and not self._joined:
            self._joined = True
            self._emit(out.Joined(stream.peer))
            self._settle_soon(now)
        elif stream.kind == "settle":
            self._settle_ended(now, again=len(self._table) > stream.members_before)

    def _apply_events(self, now: float, events: list[UserEvent]) -> None:
        if events and self._sync_events is not None:
            self._sync_events(now, events)

    def _news(self, rows: tuple[bytes, ...]) -> list[tuple[bytes, StateEntry]]:
        """The received entries that differ from ours, parsed (all of them
        first, so a bad entry rejects the frame before any is applied)."""
        parse = self._codec.parse_entry
        return [(raw, parse(raw)) for raw in self._rows.news(self._table, rows)]

    def _settle_soon(self, now: float) -> None:
        """Schedule a settling pull unless one is pending or the series is spent."""
        if self._settle_pending or self._settle_budget >= SETTLE_PULLS:
            return
        if self._settle_budget == 0:
            self._settle_mark = len(self._table)
        self._settle_pending = True
        self._timers.add(now + SETTLE_DELAY * self._rng.uniform(1.0, 2.0), self._settle)

    def _settle_ended(self, now: float, again: bool) -> None:
        if again:
            self._settle_soon(now)
        if not self._settle_pending:
            self._settle_budget = 0  # the series ended: a later join starts another

    def _settle(self, now: float, _: Any) -> None:
        self._settle_pending = False
        if self._leaving:
            return
        peers = self._table.random_members(1, ALIVE_ONLY, exclude=(self._name,))
        if peers:
            self._settle_budget += 1
            before, self._settle_mark = self._settle_mark, len(self._table)
            self._open_push_pull(
                now,
                peers[0].address,
                kind="settle",
                join=False,
                pull_only=True,
                members_before=before,
            )

    def stream_failed(self, now: float, stream_id: int, reason: str) -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is not None:
            self._count("streams_failed", 1, stream.kind)
            self._stream_lost(now, stream)

    def _stream_lost(self, now: float, stream: StreamState) -> None:
        if stream.kind == "ping":
            self._ping_failed(now, stream.probe_seq)
            return
        if stream.kind == "settle":
            self._settle_ended(now, again=True)  # try another member
            return
        rec = self._reconnects.get(stream.member)
        if stream.kind == "reconnect" and rec is not None:
            rec.backoff = min(rec.backoff * 2, self._cfg.reconnect_max_backoff)
            rec.next_try = now + rec.backoff * self._rng.uniform(0.75, 1.25)

    def _push_pull_tick(self, now: float, _: Any) -> None:
        interval = self._cfg.scaled_push_pull_interval(len(self._table))
        self._timers.add(now + interval * self._rng.uniform(0.9, 1.1), self._push_pull_tick)
        if self._leaving:
            return
        peers = self._table.random_members(1, ALIVE_ONLY, exclude=(self._name,))
        if peers:
            self._open_push_pull(now, peers[0].address, kind="push_pull", join=False)

    def _reconnect_tick(self, now: float, _: Any) -> None:
        """Try one random recently-dead member (partitions heal through this);
        when alone, try the seeds again."""
        cfg = self._cfg
        self._timers.add(
            now + cfg.reconnect_interval * self._rng.uniform(0.75, 1.25), self._reconnect_tick
        )
        if self._leaving:
            return
        for name in [n for n, r in self._reconnects.items() if r.until <= now]:
            del self._reconnects[name]
        due = sorted(n for n, r in self._reconnects.items() if r.next_try <= now)
        if due:
            name = self._rng.choice(due)
            rec = self._reconnects[name]
            rec.next_try = now + rec.backoff  # until the attempt reports back
            self._open_push_pull(now, rec.address, kind="reconnect", join=False, member=name)
        # A seed that is not an alive member of our table is in another cluster
        # (a partition that outlived the dead list, or a split at start-up).
        alive = self._alive_addresses() if self._seeds else set()
        strangers = [s for s in self._seeds if s not in alive]
        if self._named_seeds and self._joined and self._alone():
            self._emit(out.ResolveSeeds())  # set_seeds joins them all
        elif strangers:
            self._open_push_pull(now, self._rng.choice(strangers), kind="join", join=True)

    def _alive_addresses(self) -> set[Address]:
        version, cached = self._alive_cache
        if version != self._table.version:
            cached = {m.address for m in self._table if m.state <= SUSPECT}
            self._alive_cache = (self._table.version, cached)
        return cached

    def _retry_join(self, now: float, attempt: int) -> None:
        """Until a first join succeeds, retry the seeds (joinretry.py)."""
        if not join_retry_wanted(joined=self._joined, leaving=self._leaving):
            return
        if self._named_seeds:
            self._emit(out.ResolveSeeds())  # set_seeds joins them
        else:
            self.join(now, self._seeds)
        delay = join_retry_delay(attempt, self._cfg.reconnect_interval, self._rng)
        self._timers.add(now + delay, self._retry_join, attempt + 1)
