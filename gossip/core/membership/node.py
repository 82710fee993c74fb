"""The membership state machine of one node: SWIM with Lifeguard, no I/O.

The public surface (the shared core contract) lives here. The node owns its
parts, each keeping its own state: the member table (members.py), the timers,
the counters (counters.py), its Identity (identity.py: its incarnation, its
alive and its leave), a Disseminator (dissemination.py: the broadcast queue,
sends with piggybacked updates), a Prober (probing.py: the probes in flight),
Suspicions (suspecting.py: the suspicions and their timers), a Syncer
(pushpull.py: the streams, the join, the reconnects); Updates (updates.py)
holds the rules that merge an update or a remote table into the table, and
Inbound (inbound.py) parses each datagram and routes its messages. The node
routes each call to its part and decides when to probe and what a stall of
the shell's loop costs (loop_lagged: health, then the Prober restarts its
probes).

Rules:
- Inputs are method calls that take `now`; outputs are queued values drained
  with take_outputs(). The node never reads a clock and draws randomness only
  from the injected rng, so a seed and an input sequence fix every output.
- start() announces a fresh incarnation (the persisted one + 1), so a
  restarted node always outranks what the cluster remembers of it.
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
from gossip.core.membership.identity import Identity
from gossip.core.membership.inbound import Inbound
from gossip.core.membership.lifeguard import Health, stall_penalty
from gossip.core.membership.members import ALIVE, SUSPECT, MemberTable
from gossip.core.membership.messages import (
    Ack,
    Left,
    Message,
    Prune,
    QueryReply,
    UserEvent,
)
from gossip.core.membership.probing import Prober
from gossip.core.membership.pushpull import Syncer
from gossip.core.membership.queries import QueryDesk
from gossip.core.membership.reachability import Reachability, ReachCheck
from gossip.core.membership.staterows import StateRows
from gossip.core.membership.suspecting import Suspicions
from gossip.core.membership.tags import check_tags
from gossip.core.membership.timers import TimerHeap
from gossip.core.membership.updates import Updates
from gossip.core.membership.wire import Codec, encode_message
from gossip.core.types import Address, MemberInfo, MemberState


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
        self._versions = versions.VersionChooser(name, (cfg.protocol_min, cfg.protocol_max))
        advertised = MappingProxyType(self._advertised(tags or {}))
        check_tags(cfg, advertised)
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
            after_round=lambda now: self._me.gossip_round_done(now),
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
        self._me = Identity(
            name,
            address,
            cfg,
            incarnation=incarnation,
            tags=advertised,
            table=self._table,
            timers=self._timers,
            gossip=self._gossip,
            emit=self._outbox.append,
            count=self._count,
            health_delta=self._health_delta,
        )
        self._started = False
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
            declare_dead=lambda now, cur, accuser, n: self._updates.declare_dead(
                now, cur, accuser, n
            ),
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
            merge=lambda now, entries, gossip_new: self._updates.merge(now, entries, gossip_new),
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
        self._updates = Updates(
            self._me,
            cfg,
            table=self._table,
            timers=self._timers,
            rows=self._rows,
            gossip=self._gossip,
            suspicions=self._suspicions,
            syncer=self._syncer,
            health=self._health,
            emit=self._outbox.append,
            count=self._count,
        )
        self._reach = Reachability(lambda to, ping: self._send(to, ping), self._timers)
        self._inbound = Inbound(
            codec=self._codec,
            counters=self._counters,
            gossip=self._gossip,
            updates=self._updates,
            prober=self._prober,
            reach=self._reach,
            coords=self._coords,
            queries=self._queries,
            user_event=self._new_event,
            reject=self._reject,
        )

    # ---- public surface -----------------------------------------------------

    @property
    def incarnation(self) -> int:
        return self._me.incarnation

    @property
    def tags(self) -> Mapping[str, str]:
        return self._me.tags

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
        self._inbound.open = True
        self._me.announce(now, self._me.incarnation + 1)
        self._timers.add(now + self.rng.uniform(0, self.cfg.probe_interval), self._probe_tick)
        self._syncer.start(now, seeds, named_seeds)

    def _probe_tick(self, now: float, _: object) -> None:
        """Flush the counters and, unless leaving, probe the next member."""
        self._counters.flush(now, self._outbox.append)
        if self._me.leaving:
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
        if self._me.leaving or not self._started:
            if not self._started:
                self._outbox.append(out.LeaveCompleted())
            return
        self._syncer.leave()
        self._me.leave(now)

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
        self._me.tags = MappingProxyType(advertised)
        if self._started and not self._me.leaving:
            self._me.announce(now, self._me.incarnation + 1)
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
            self._updates.on_left(now, left, encode_message(left))
        if prune:
            msg = Prune(name, cur.incarnation)
            self._updates.on_prune(now, msg, encode_message(msg))
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
        self._inbound.receive(now, src, payload)

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
