"""Push-pull state sync over streams, joining, and reconnecting.

Rules:
- A push-pull is one stream request (our whole table) and one response (the
  peer's). The responder merges the request before it builds its reply, so
  one exchange lets both sides refute what the other believed about them.
  A remote `dead` only makes us suspect; our own timers decide, but one
  about a member we already suspect at that incarnation settles our
  suspicion at its minimum timeout (node.py). Entries
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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gossip.core.membership import outputs as out
from gossip.core.membership.joinretry import join_retry_delay, join_retry_wanted
from gossip.core.membership.members import ALIVE, ALIVE_ONLY, DEAD, LEFT, SUSPECT
from gossip.core.membership.messages import (
    Ack,
    Alive,
    Left,
    Ping,
    StateEntry,
    Suspect,
    SyncRows,
)
from gossip.core.membership.nodebase import NodeBase, StreamState
from gossip.core.membership.wire import WireError, alive_from_entry, encode_message
from gossip.core.types import Address

SETTLE_DELAY = 0.5
"""Seconds (times 1..2) after joining before the settling pull, and between pulls."""
SETTLE_PULLS = 10
"""At most this many settling pulls in a row (see the rules above)."""


class Syncer(NodeBase):
    def join(self, now: float, seeds: Sequence[Address]) -> None:
        """Push-pull with every seed; the first success emits Joined."""
        for seed in seeds:
            if seed != self.address:
                self._open_push_pull(now, seed, kind="join", join=True)

    def set_seeds(self, now: float, seeds: Sequence[Address]) -> None:
        """The seeds resolved again (the answer to ResolveSeeds): kept for later
        retries, and joined at once while not joined yet or alone."""
        self._seeds = [s for s in seeds if s != self.address]
        if not self._leaving and (not self._joined or self._alone()):
            self.join(now, self._seeds)

    def _alone(self) -> bool:
        return self._table.live <= 1

    # ---- streams: push-pull and the fallback ping -----------------------------------

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
        payload = self._codec.sync_frame(join, rows)
        self._count("push_pull_bytes_out", len(payload))
        stream = StreamState(kind, to, 0, member=member, members_before=members_before)
        self._open_stream(now, to, payload, stream, self.cfg.stream_timeout)

    def handle_stream_request(self, now: float, src: Address, payload: bytes) -> bytes | None:
        """Answer one request frame (push-pull or ping); None closes the stream."""
        try:
            msg = self._codec.decode_sync_frame(payload)
            news = self._news(msg.rows) if type(msg) is SyncRows else []
        except WireError as exc:
            self._reject(src, exc.reason)
            return None
        if not self._started:
            return None
        if isinstance(msg, Ping):
            return self._codec.frame(Ack(msg.seq)) if msg.target == self.name else None
        if isinstance(msg, SyncRows) and msg.join is not None:
            self._count("push_pull_bytes_in", len(payload))
            known = len(self._table)
            self._merge(now, news)
            if msg.join and len(self._table) > known:
                self._settle_soon(now)
            reply = self._codec.sync_frame(None, self._rows.wrapped(self._table))
            self._count("push_pull_bytes_out", len(reply))
            self._outbox.append(
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
        except WireError as exc:
            self._reject(stream.peer, exc.reason)
            self._stream_lost(now, stream)
            return
        if stream.kind == "ping":
            if isinstance(msg, Ack) and msg.seq == stream.probe_seq:
                self._prober.on_ack(now, msg.seq)
            else:
                self._prober.fallback_failed(now, stream.probe_seq)
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
        self._merge(now, news, gossip_new=not quiet)
        self._outbox.append(
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
            self._outbox.append(out.Joined(stream.peer))
            self._settle_soon(now)
        elif stream.kind == "settle":
            self._settle_ended(now, again=len(self._table) > stream.members_before)

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
        self._timers.add(now + SETTLE_DELAY * self.rng.uniform(1.0, 2.0), self._settle)

    def _settle_ended(self, now: float, again: bool) -> None:
        if again:
            self._settle_soon(now)
        if not self._settle_pending:
            self._settle_budget = 0  # the series ended: a later join starts another

    def _settle(self, now: float, _: Any) -> None:
        self._settle_pending = False
        if self._leaving:
            return
        peers = self._table.random_members(1, ALIVE_ONLY, exclude=(self.name,))
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
            self._prober.fallback_failed(now, stream.probe_seq)
            return
        if stream.kind == "settle":
            self._settle_ended(now, again=True)  # try another member
            return
        rec = self._reconnects.get(stream.member)
        if stream.kind == "reconnect" and rec is not None:
            rec.backoff = min(rec.backoff * 2, self.cfg.reconnect_max_backoff)
            rec.next_try = now + rec.backoff * self.rng.uniform(0.75, 1.25)

    def _merge(
        self, now: float, entries: list[tuple[bytes, StateEntry]], gossip_new: bool = True
    ) -> None:
        """Fold a remote table into ours; what is news to us is gossiped on,
        as in memberlist (this is how a healed partition spreads). A remote
        `dead` only makes us suspect (our own timers decide), or settles a
        suspicion we already hold at that incarnation."""
        me, table = self.name, self._table
        for raw, e in entries:
            cur = table.get(e.name)
            if (
                cur is not None
                and cur.incarnation == e.incarnation
                and cur.state == e.state
                and cur.address == e.address
            ):
                continue  # nothing new (the common case)
            # Applied with the bytes gossip carries the same update in, so
            # that its gossiped copies are then recognised unparsed.
            if e.state == ALIVE:
                alive = Alive(e.name, e.incarnation, e.address, e.tags)
                self._on_alive(now, alive, alive_from_entry(raw), gossip_new or cur is not None)
            elif e.state == LEFT:
                left = Left(e.name, e.incarnation)
                self._on_left(now, left, encode_message(left))
            elif e.name == me:
                self._on_suspect(now, Suspect(me, e.incarnation, "push_pull"))
            elif e.state == DEAD:
                self._remote_death(now, e.name, e.incarnation)
            else:
                self._suspect(now, e.name, e.incarnation, me)

    def _push_pull_tick(self, now: float, _: Any) -> None:
        interval = self.cfg.scaled_push_pull_interval(len(self._table))
        self._timers.add(now + interval * self.rng.uniform(0.9, 1.1), self._push_pull_tick)
        if self._leaving:
            return
        peers = self._table.random_members(1, ALIVE_ONLY, exclude=(self.name,))
        if peers:
            self._open_push_pull(now, peers[0].address, kind="push_pull", join=False)

    def _reconnect_tick(self, now: float, _: Any) -> None:
        """Try one random recently-dead member (partitions heal through this);
        when alone, try the seeds again."""
        cfg = self.cfg
        self._timers.add(
            now + cfg.reconnect_interval * self.rng.uniform(0.75, 1.25), self._reconnect_tick
        )
        if self._leaving:
            return
        for name in [n for n, r in self._reconnects.items() if r.until <= now]:
            del self._reconnects[name]
        due = sorted(n for n, r in self._reconnects.items() if r.next_try <= now)
        if due:
            name = self.rng.choice(due)
            rec = self._reconnects[name]
            rec.next_try = now + rec.backoff  # until the attempt reports back
            self._open_push_pull(now, rec.address, kind="reconnect", join=False, member=name)
        # A seed that is not an alive member of our table is in another cluster
        # (a partition that outlived the dead list, or a split at start-up).
        alive = self._alive_addresses() if self._seeds else set()
        strangers = [s for s in self._seeds if s not in alive]
        if self._named_seeds and self._joined and self._alone():
            self._outbox.append(out.ResolveSeeds())  # set_seeds joins them all
        elif strangers:
            self._open_push_pull(now, self.rng.choice(strangers), kind="join", join=True)

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
            self._outbox.append(out.ResolveSeeds())  # set_seeds joins them
        else:
            self.join(now, self._seeds)
        delay = join_retry_delay(attempt, self.cfg.reconnect_interval, self.rng)
        self._timers.add(now + delay, self._retry_join, attempt + 1)
