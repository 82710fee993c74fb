"""The membership state machine of one node: SWIM with Lifeguard, no I/O.

The public surface (the shared core contract) and the update rules live here.
The node owns its parts, each keeping its own state: the member table
(members.py), the timers, the counters (counters.py), a Disseminator
(dissemination.py), which keeps the broadcast queue and sends with piggybacked
updates; a Prober (probing.py), which keeps the probes in flight; Suspicions
(suspecting.py), which keeps the suspicions and their timers; and a Syncer
(pushpull.py), which keeps the streams, the join and the reconnects. The node
routes each input to its part and decides: when to probe, how an update or a
remote table is applied, what a suspicion's verdict does, what a stall of the
shell's loop costs (loop_lagged: health, then the Prober restarts its probes).

Rules:
- Inputs are method calls that take `now`; outputs are queued values drained
  with take_outputs(). The node never reads a clock and draws randomness only
  from the injected rng, so a seed and an input sequence fix every output.
- Every update is merged by members.supersedes (higher incarnation wins; at
  equal incarnation alive < suspect < dead < left). A suspicion becomes a
  death when its Lifeguard timeout passes (suspicion.py); a node that hears
  itself suspected, dead or left refutes with a higher incarnation, and one
  that hears a stale accusation gossips its current alive again.
- A datagram is parsed whole before any of it is acted on; an update whose
  bytes were already applied is skipped unparsed (precedence makes a repeat a
  no-op), but a repeated stale suspicion is still answered with a correction.
- start() announces a fresh incarnation (the persisted one + 1), so a
  restarted node always outranks what the cluster remembers of it.
- Name conflicts (one name, two live addresses): the higher incarnation wins;
  at equal incarnation the address already holding the name keeps it. A node
  never fights for its own name; it reports NameConflict.
- A bad datagram is counted and reported as DatagramRejected; no input raises.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from gossip.core.membership import forceleave, queryrelay, versions
from gossip.core.membership import outputs as out
from gossip.core.membership.config import Config
from gossip.core.membership.coordinates import Coordinates
from gossip.core.membership.counters import Counters
from gossip.core.membership.dissemination import Disseminator
from gossip.core.membership.lifeguard import Health, stall_penalty
from gossip.core.membership.members import ALIVE, DEAD, LEFT, SUSPECT, MemberTable, supersedes
from gossip.core.membership.messages import (
    Ack,
    Alive,
    CoordinateMsg,
    Dead,
    Left,
    Message,
    Nack,
    Ping,
    PingReq,
    Prune,
    Query,
    QueryRelay,
    QueryReply,
    StateEntry,
    Suspect,
    UserEvent,
)
from gossip.core.membership.probing import Prober
from gossip.core.membership.pushpull import Syncer
from gossip.core.membership.queries import QueryDesk
from gossip.core.membership.reachability import SEQ_BASE, Reachability, ReachCheck
from gossip.core.membership.staterows import StateRows
from gossip.core.membership.suspecting import Suspicions
from gossip.core.membership.tags import check_tags, freeze_tags
from gossip.core.membership.timers import TimerHeap
from gossip.core.membership.wire import (
    Codec,
    WireError,
    alive_from_entry,
    encode_message,
    entry_from_alive,
    wrap,
)
from gossip.core.types import Address, MemberInfo, MemberState

MISS = ("", -1)
"""An update not in the cache of applied ones (None is a cached non-accusation)."""


class Node:
    def __init__(
        self,
        name: str,
        address: Address,
        cfg: Config,
        *,
        rng: random.Random,
        incarnation: int = 0,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        if not name or len(name.encode()) > cfg.max_name_bytes:
            raise ValueError(f"node name must be 1..{cfg.max_name_bytes} bytes")
        self.name = name
        self.address = address
        self.cfg = cfg
        self.rng = rng
        self.incarnation = incarnation
        self._versions = versions.VersionChooser(name, (cfg.protocol_min, cfg.protocol_max))
        self.tags: Mapping[str, str] = MappingProxyType(self._advertised(tags or {}))
        check_tags(cfg, self.tags)
        self._health = Health(cfg.max_health)
        self._codec = Codec(cfg)
        self._coords = Coordinates(name, cfg.coordinates, lambda: [m.name for m in self._table])
        self._table = MemberTable(rng)
        self._timers = TimerHeap()
        self._outbox: list[out.Output] = []
        self._counters = Counters()
        self._count = self._counters.count
        self._rows = StateRows()
        self._gossip = Disseminator(
            name,
            cfg,
            table=self._table,
            timers=self._timers,
            codec=self._codec,
            counters=self._counters,
            emit=self._outbox.append,
            after_round=self._gossip_round_done,
        )
        # Every path that sends, queues or caches an update goes through the
        # Disseminator; these names keep the node's and its parts' calls short.
        self._send = self._gossip.send
        self._enqueue = self._gossip.enqueue
        self._remember = self._gossip.remember
        self._events = self._gossip.events
        self._queries = QueryDesk(
            name,
            address,
            cfg,
            rng=rng,
            tags=lambda: self.tags,
            send=self._send,
            emit=self._outbox.append,
            gossip=self._gossip_query,
            reply_room=queryrelay.reply_room(self._codec.room, cfg.max_name_bytes),
            pick_relays=lambda n, exclude: self._table.random_members(n, {ALIVE}, exclude),
            member=self._table.get,
            count=self._count,
        )
        self._started = False
        self._leaving = False
        self._leave_done = False
        self._left_payload = b""
        self._self_payload = b""
        self._suspicions = Suspicions(
            name,
            cfg,
            table=self._table,
            timers=self._timers,
            enqueue=self._enqueue,
            tell=self._send,
            remember=self._remember,
            count=self._count,
            emit=self._outbox.append,
            declare_dead=self._declare_dead,
        )
        self._syncer = Syncer(
            name,
            address,
            cfg,
            rng=rng,
            table=self._table,
            timers=self._timers,
            codec=self._codec,
            rows=self._rows,
            queue=self._gossip.queue,
            emit=self._outbox.append,
            count=self._count,
            reject=self._reject,
            merge=self._merge,
            ping_answered=lambda now, seq: self._prober.on_ack(now, seq),
            ping_failed=lambda now, seq: self._prober.fallback_failed(now, seq),
            recent_events=self._events.recent_wrapped,
            sync_events=self._sync_events,
        )
        self._prober = Prober(
            name,
            cfg,
            table=self._table,
            timers=self._timers,
            health=self._health,
            codec=self._codec,
            send=self._send_answer,
            emit=self._outbox.append,
            count=self._count,
            health_delta=self._health_delta,
            open_ping=self._syncer.open_ping,
            suspect=self._suspicions.suspect,
            rtt_sample=self._coords.sample,
        )
        self._reach = Reachability(lambda to, ping: self._send(to, ping), self._timers)

    # ---- public surface -----------------------------------------------------

    @property
    def health(self) -> int:
        return self._health.score

    def members(self) -> list[MemberInfo]:
        return list(self._table)

    def member(self, name: str) -> MemberInfo | None:
        return self._table.get(name)

    @property
    def protocol_version(self) -> int:
        """The wire version this node speaks now (versions.py)."""
        return self._codec.version

    @property
    def coordinates(self) -> Coordinates:
        """This node's network coordinate and its peers' (read them, do not
        feed them: the node does)."""
        return self._coords

    def count(self, state: MemberState) -> int:
        """How many members (this node included) are in `state`: O(1)."""
        return self._table.counts[state]

    def take_outputs(self) -> list[out.Output]:
        if self._versions.observe(self._outbox):
            self._codec.speak(self._versions.speaking)
        # Copied, not swapped: the parts hold this list's append.
        outputs = self._outbox.copy()
        self._outbox.clear()
        return outputs

    def next_deadline(self) -> float | None:
        return self._timers.next_deadline()

    def handle_timeout(self, now: float) -> None:
        self._timers.fire_due(now)

    def start(self, now: float, seeds: Sequence[Address], *, named_seeds: bool = False) -> None:
        """Announce ourselves with a fresh incarnation, start the timers, join.
        With `named_seeds` the seeds were resolved from names: before each
        retry the node asks for them again (ResolveSeeds, then set_seeds),
        and it retries even when none resolved yet (joinretry.py)."""
        if self._started:
            return
        self._started = True
        self._set_incarnation(self.incarnation + 1)
        self._table.put(self._self_info(now), probe=False)
        self._broadcast_self()
        self._timers.add(now + self.rng.uniform(0, self.cfg.probe_interval), self._probe_tick)
        self._syncer.start(now, seeds, named_seeds)

    def _probe_tick(self, now: float, _: object) -> None:
        """Flush the counters and, unless leaving, probe the next member."""
        self._counters.flush(now, self._outbox.append)
        if self._leaving:
            return
        self._timers.add(now + self._health.scale(self.cfg.probe_interval), self._probe_tick)
        self._prober.probe_next(now)

    def loop_lagged(self, now: float, lag_s: float) -> None:
        """The shell ran its timers `lag_s` seconds late (call it before
        handle_timeout): a stall long enough to matter makes this node more
        patient (lifeguard.stall_penalty), and its probes in flight start over."""
        cfg = self.cfg
        penalty = stall_penalty(lag_s, cfg.probe_timeout, cfg.probe_interval)
        if not penalty or not cfg.stall_awareness:
            return
        self._count("loop_stalls")
        self._health_delta(penalty, "loop_stalled")
        self._prober.restart_probes(now)

    def leave(self, now: float) -> None:
        """Disseminate `left`; LeaveCompleted follows when it has been sent its
        full retransmit count (or after leave_timeout, or at once when alone)."""
        if self._leaving or not self._started:
            if not self._started:
                self._outbox.append(out.LeaveCompleted())
            return
        self._leaving = True
        self._syncer.leave()
        self._table.put(self._self_info(now, LEFT), probe=False)
        self._left_payload = wrap(encode_message(Left(self.name, self.incarnation)))
        self._gossip.queue.enqueue(self.name, self._left_payload)
        self._gossip.schedule(now)
        if self._table.live == 0:
            self._finish_leave(now, None)
        else:
            self._timers.add(now + self.cfg.leave_timeout, self._finish_leave)

    def check_reachability(self, now: float, timeout: float) -> ReachCheck:
        """Ping every other alive or suspect member directly, now (reachability.py)."""
        others = [m for m in self._table if m.name != self.name and m.state <= SUSPECT]
        return self._reach.check(now, others, timeout)

    def join(self, now: float, seeds: Sequence[Address]) -> None:
        """Push-pull with every seed; the first success emits Joined."""
        self._syncer.join(now, seeds)

    def set_seeds(self, now: float, seeds: Sequence[Address]) -> None:
        """The seeds resolved again (the answer to ResolveSeeds): kept for later
        retries, and joined at once while not joined yet or alone."""
        self._syncer.set_seeds(now, seeds)

    def set_tags(self, now: float, tags: Mapping[str, str]) -> None:
        advertised = self._advertised(tags)
        check_tags(self.cfg, advertised)  # first: a refused change leaves the tags as they were
        self.tags = MappingProxyType(advertised)
        if self._started and not self._leaving:
            self._set_incarnation(self.incarnation + 1)
            self._table.put(self._self_info(now), probe=False)
            self._broadcast_self()
            self._gossip.schedule(now)

    def user_event(self, now: float, name: str, payload: bytes, coalesce: bool = True) -> None:
        """Fire a user event (userevents.py): delivered here and gossiped to
        all. ValueError if the name and payload exceed the limit."""
        self._deliver(self._events.fire(name, payload, coalesce), True)
        self._gossip.hurry(now)

    def query(
        self,
        now: float,
        name: str,
        payload: bytes,
        *,
        node: str = "*",
        tags: Mapping[str, str] | None = None,
        ack: bool = True,
        timeout: float = 5.0,
        relay: int = 0,
    ) -> int:
        """Ask the members matching the globs `node` and `tags` (queries.py),
        replies also relayed through `relay` members (queryrelay.py); their
        acks and answers come back as QueryAnswered. The query's id."""
        return self._queries.start(now, name, payload, node, tags or {}, ack, timeout, relay)

    def respond(self, now: float, qid: int, address: Address, payload: bytes) -> None:
        """Answer a QueryReceived (ValueError if larger than query_reply_room)."""
        self._queries.respond(now, qid, address, payload)

    @property
    def query_reply_room(self) -> int:
        """The largest answer respond() sends; the shell streams larger ones."""
        return self._queries.reply_room

    def receive_query_reply(self, now: float, reply: QueryReply) -> None:
        """An answer to a query of ours that came over a stream."""
        self._queries.on_reply(now, reply)

    def _gossip_query(self, now: float, wrapped: bytes) -> None:
        self._events.gossip(wrapped)
        self._gossip.hurry(now)

    def _new_event(self, now: float, ev: UserEvent) -> None:
        """A user event gossiped to us: delivered, and passed on at once if new."""
        known = self._events.kept
        self._deliver(ev, self._events.receive(ev))
        if self._events.kept != known:
            self._gossip.hurry(now)

    def _sync_events(self, now: float, events: list[UserEvent]) -> None:
        """A peer's recent events (push-pull): the ones missed are delivered."""
        for ev in events:
            self._deliver(ev, self._events.receive(ev, gossip=False))

    def _deliver(self, ev: UserEvent, new: bool) -> None:
        if new:
            self._count("user_events_delivered")
            self._outbox.append(out.UserEventReceived(ev.ltime, ev.name, ev.payload, ev.coalesce))

    def force_leave(self, now: float, name: str, *, prune: bool = False) -> str | None:
        """An operator forces a failed member out (forceleave.py): None when
        done, else why it is refused."""
        cur = self._table.get(name)
        why = forceleave.refusal(self.name, name, cur, prune)
        if why is not None or cur is None:
            return why
        if forceleave.needs_left(cur):
            left = Left(name, cur.incarnation)
            self._on_left(now, left, encode_message(left))
        if prune:
            msg = Prune(name, cur.incarnation)
            self._on_prune(now, msg, encode_message(msg))
        return None

    # ---- streams (the Syncer's) ------------------------------------------------

    def handle_stream_request(self, now: float, src: Address, payload: bytes) -> bytes | None:
        """Answer one request frame (push-pull or ping); None closes the stream."""
        return self._syncer.handle_stream_request(now, src, payload)

    def receive_stream_response(self, now: float, stream_id: int, payload: bytes) -> None:
        self._syncer.receive_stream_response(now, stream_id, payload)

    def stream_failed(self, now: float, stream_id: int, reason: str) -> None:
        self._syncer.stream_failed(now, stream_id, reason)

    # ---- datagrams ------------------------------------------------------------

    def receive_datagram(self, now: float, src: Address, payload: bytes) -> None:
        counters = self._counters
        counters.packets_in += 1
        counters.bytes_in += len(payload)
        codec = self._codec
        seen_get = self._gossip.seen.get  # hot: ~50 lookups per packet
        fresh: list[tuple[bytes, Message]] = []
        accusations: list[tuple[str, int]] = []
        repeats: list[bytes] = []
        try:
            # Parse everything before acting on anything: a packet is all or nothing.
            for raw in codec.split_packet(payload):
                hit = seen_get(raw, MISS)
                if hit is MISS:
                    fresh.append((raw, codec.parse(raw)))
                else:
                    repeats.append(raw)
                    if hit is not None:
                        accusations.append(hit)
        except WireError as exc:
            self._reject(src, exc.reason)
            return
        if not self._started:
            return
        if repeats:
            self._gossip.queue.heard(repeats)
        for raw, msg in fresh:
            self._dispatch(now, src, msg, raw)
        for name, inc in accusations:
            self._correct_if_stale(src, name, inc)

    def _correct_if_stale(self, src: Address, name: str, inc: int) -> None:
        """`src` gossips a suspicion or death older than the alive we hold:
        it missed a refutation, so tell it directly (a lost refutation would
        otherwise let its suspicion timer kill a live member)."""
        cur = self._table.get(name)
        if cur is not None and cur.state == ALIVE and inc < cur.incarnation:
            self._count("corrections_sent")
            self._send(src, Alive(name, cur.incarnation, cur.address, cur.tags))

    def _dispatch(self, now: float, src: Address, msg: Message, raw: bytes) -> None:
        # Most frequent kinds first: a datagram is mostly piggybacked alives.
        if type(msg) is Alive:
            self._on_alive(now, msg, raw)
        elif type(msg) is Ack:
            if msg.seq < SEQ_BASE:
                self._prober.on_ack(now, msg.seq)
            else:
                self._reach.on_ack(now, msg.seq)
        elif type(msg) is Ping:
            self._prober.on_ping(src, msg)
        elif type(msg) is Suspect:
            self._correct_if_stale(src, msg.name, msg.incarnation)
            self._on_suspect(now, msg, raw)
        elif type(msg) is Dead:
            self._correct_if_stale(src, msg.name, msg.incarnation)
            self._on_dead(now, msg, raw)
        elif type(msg) is Left:
            self._on_left(now, msg, raw)
        elif type(msg) is Prune:
            self._on_prune(now, msg, raw)
        elif type(msg) is PingReq:
            self._prober.on_ping_req(now, src, msg)
        elif type(msg) is Nack:
            self._prober.on_nack(msg.seq)
        elif type(msg) is CoordinateMsg:
            self._coords.heard(msg)
        elif type(msg) is UserEvent:
            self._new_event(now, msg)
        elif type(msg) is Query:
            self._queries.on_query(now, msg)
        elif type(msg) is QueryReply:
            self._queries.on_reply(now, msg)
        elif type(msg) is QueryRelay:
            self._queries.on_relay(msg)
        else:
            self._reject(src, "unexpected_kind")

    # ---- membership updates ----------------------------------------------------

    def _on_alive(
        self, now: float, a: Alive, raw: bytes | None = None, gossip: bool = True
    ) -> None:
        if a.name == self.name:
            self._on_alive_about_self(now, a)
            return
        cur = self._table.get(a.name)
        if cur is not None:
            self._remember(raw)
            inc = cur.incarnation
            if a.incarnation < inc or (a.incarnation == inc and cur.state != ALIVE):
                return  # stale, or loses to suspect/dead/left at this incarnation
            if a.incarnation == inc:
                if a.address != cur.address:
                    self._name_conflict(cur, a.address, winner=cur.address)
                return  # duplicate (tags change only with a new incarnation)
        info = MemberInfo(a.name, a.address, ALIVE, a.incarnation, freeze_tags(a.tags), now)
        self._table.put(info)
        if raw is not None:
            self._remember(raw)
            self._rows.note(info, entry_from_alive(raw))
        if gossip:
            self._enqueue(now, a.name, a, raw)
        if cur is None or cur.state >= DEAD:
            self._syncer.forget(a.name)
            self._outbox.append(out.MemberJoined(info))
            return
        if cur.address != a.address:
            self._name_conflict(cur, a.address, winner=a.address)
        if cur.state == SUSPECT:
            self._suspicions.drop(a.name)
            self._outbox.append(out.MemberRecovered(info))
        elif cur.address != a.address or dict(cur.tags) != dict(a.tags):
            self._outbox.append(out.MemberUpdated(info))

    def _on_alive_about_self(self, now: float, a: Alive) -> None:
        if a.address != self.address:
            # Another node claims our name: do not fight over it (each
            # refutation would provoke the other); report it.
            me = self._self_info(now)
            self._name_conflict(me, a.address, winner=_winner(me, a))
        elif a.incarnation > self.incarnation and not self._leaving:
            self._refute(now, "alive", a.name, a.incarnation)

    def _name_conflict(self, holder: MemberInfo, other: Address, winner: Address) -> None:
        self._count("name_conflicts")
        self._outbox.append(out.NameConflict(holder.name, holder.address, other, winner))

    def _on_suspect(self, now: float, s: Suspect, raw: bytes | None = None) -> None:
        if s.name == self.name:
            if s.incarnation >= self.incarnation and not self._leaving:
                self._refute(now, "suspect", s.accuser, s.incarnation)
            else:
                self._reassert(now)
            return
        self._suspicions.suspect(now, s.name, s.incarnation, s.accuser, raw)

    def _declare_dead(self, now: float, cur: MemberInfo, accuser: str, confirmations: int) -> None:
        """A suspicion of `cur` ran its course: declare it dead and gossip that."""
        self._declare(now, cur, DEAD, accuser, confirmations)
        self._enqueue(now, cur.name, Dead(cur.name, cur.incarnation, self.name), None)

    def _on_dead(self, now: float, d: Dead, raw: bytes | None = None) -> None:
        if d.name == self.name:
            if d.incarnation >= self.incarnation and not self._leaving:
                self._refute(now, "dead", d.accuser, d.incarnation)
            else:
                self._reassert(now)
            return
        cur = self._table.get(d.name)
        if cur is None:
            return
        self._remember(raw, (d.name, d.incarnation))
        if not supersedes(d.incarnation, DEAD, cur.incarnation, cur.state):
            return
        susp = self._suspicions.drop(d.name)
        cur = MemberInfo(cur.name, cur.address, cur.state, d.incarnation, cur.tags, now)
        self._declare(now, cur, DEAD, d.accuser, susp.confirmations if susp else 0)
        self._enqueue(now, d.name, d, raw)

    def _on_left(self, now: float, msg: Left, raw: bytes | None = None) -> None:
        if msg.name == self.name:
            if msg.incarnation >= self.incarnation and not self._leaving:
                self._refute(now, "left", msg.name, msg.incarnation)
            return
        cur = self._table.get(msg.name)
        if cur is None:
            return
        self._remember(raw)
        if not supersedes(msg.incarnation, LEFT, cur.incarnation, cur.state):
            return
        self._suspicions.drop(msg.name)
        cur = MemberInfo(cur.name, cur.address, cur.state, msg.incarnation, cur.tags, now)
        self._declare(now, cur, LEFT, msg.name, 0)
        self._enqueue(now, msg.name, msg, raw)

    def _on_prune(self, now: float, msg: Prune, raw: bytes | None = None) -> None:
        if msg.name == self.name:
            if msg.incarnation >= self.incarnation and not self._leaving:
                self._refute(now, "left", msg.name, msg.incarnation)
            return
        cur = self._table.get(msg.name)
        self._remember(raw)
        if not forceleave.prune_applies(cur, msg.incarnation):
            return
        self._suspicions.drop(msg.name)
        self._syncer.forget(msg.name)
        self._table.remove(msg.name)
        self._outbox.append(out.MemberReaped(msg.name))
        self._enqueue(now, msg.name, msg, raw)

    def _merge(self, now: float, entries: list[tuple[bytes, StateEntry]], gossip_new: bool) -> None:
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
                self._suspicions.remote_death(now, e.name, e.incarnation)
            else:
                self._suspicions.suspect(now, e.name, e.incarnation, me, hearsay=True)

    def _declare(
        self, now: float, cur: MemberInfo, state: MemberState, accuser: str, confirmations: int
    ) -> None:
        """Record `cur` as dead or left, notify, and arrange its reaping."""
        info = MemberInfo(cur.name, cur.address, state, cur.incarnation, cur.tags, now)
        self._table.put(info)
        if state == DEAD:
            self._outbox.append(out.MemberFailed(info, accuser, confirmations, self.health))
            self._syncer.member_died(now, info)
        else:
            self._syncer.forget(info.name)
            self._outbox.append(out.MemberLeft(info))
        self._timers.add(now + self.cfg.dead_reap_time, self._reap, info)

    def _reap(self, now: float, info: MemberInfo) -> None:
        if self._table.get(info.name) is info:
            self._table.remove(info.name)
            self._outbox.append(out.MemberReaped(info.name))

    def _refute(self, now: float, accused: str, accuser: str, accused_inc: int) -> None:
        self._set_incarnation(max(self.incarnation, accused_inc) + 1)
        self._table.put(self._self_info(now), probe=False)
        self._broadcast_self()
        self._gossip.schedule(now)
        self._count("refutations")
        self._outbox.append(out.SelfRefuted(accused, accuser, self.incarnation))
        self._health_delta(1, "refuted")

    def _reject(self, src: Address, reason: str) -> None:
        self._count("datagrams_rejected", 1, reason)
        self._outbox.append(out.DatagramRejected(src, reason))
        refused, self._codec.refused_version = self._codec.refused_version, 0
        if refused:
            ours = self._versions.own
            self._outbox.append(out.ProtocolRefused("", src, (refused, refused), ours))

    def _send_answer(
        self, to: Address, first: Message | None = None, *, extra: bytes = b""
    ) -> bool:
        """The Prober's send: an ack carries our coordinate when coordinates are on."""
        if type(first) is Ack and not extra and self._coords.enabled:
            extra = self._coords.part()
        return self._send(to, first, extra=extra)

    def _advertised(self, tags: Mapping[str, str]) -> dict[str, str]:
        return versions.advertised(tags, self._versions.own)

    def _health_delta(self, delta: int, reason: str) -> None:
        if delta and self._health.apply(delta):
            self._outbox.append(out.HealthChanged(self._health.score, reason))

    # ---- self -----------------------------------------------------------------------

    def _self_info(self, now: float, state: MemberState = ALIVE) -> MemberInfo:
        return MemberInfo(self.name, self.address, state, self.incarnation, self.tags, now)

    def _set_incarnation(self, inc: int) -> None:
        if inc != self.incarnation:
            self.incarnation = inc
            self._outbox.append(out.IncarnationChanged(inc))

    def _broadcast_self(self) -> None:
        alive = Alive(self.name, self.incarnation, self.address, self.tags)
        self._self_payload = wrap(encode_message(alive))
        # No ident: copies heard from others never cut our own news short.
        self._gossip.queue.enqueue(self.name, self._self_payload)

    def _reassert(self, now: float) -> None:
        """A stale accusation still circulates: someone missed our refutation,
        so gossip our current alive again (unless it is still queued)."""
        if not self._leaving and not self._gossip.queue.pending(self.name, self._self_payload):
            self._gossip.queue.enqueue(self.name, self._self_payload)
            self._gossip.schedule(now)
            self._count("reassertions")

    def _gossip_round_done(self, now: float) -> None:
        """A leave is done once our `left` has been sent its full count."""
        if self._leaving and not self._gossip.queue.pending(self.name, self._left_payload):
            self._finish_leave(now, None)

    def _finish_leave(self, now: float, _: object) -> None:
        if not self._leave_done:
            self._leave_done = True
            self._outbox.append(out.LeaveCompleted())


def _winner(holder: MemberInfo, claim: Alive) -> Address:
    """Name conflict rule: the higher incarnation wins; at equal incarnation the
    node that already holds the name keeps it."""
    return claim.address if claim.incarnation > holder.incarnation else holder.address
