"""A datagram's way in: parsed whole, then each message routed to its part.

Rules:
- A datagram is parsed whole before any of it is acted on: a packet is all
  or nothing, and a malformed one is rejected (counted, DatagramRejected).
- An update whose bytes were already applied is skipped unparsed
  (precedence makes a repeat a no-op) and only counts as heard for the
  broadcast queue; a repeated stale suspicion or death is still answered
  with a correction, after the fresh messages are applied.
- Until the node has started (`open`), datagrams are parsed, so bad ones
  are still reported, but not acted on.
- A suspicion or death is checked for staleness before it is applied, so the
  correction goes out even when the update itself is dropped.
"""

from __future__ import annotations

from collections.abc import Callable

from gossip.core.membership.coordinates import Coordinates
from gossip.core.membership.counters import Counters
from gossip.core.membership.dissemination import Disseminator
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
    Suspect,
    UserEvent,
)
from gossip.core.membership.probing import Prober
from gossip.core.membership.queries import QueryDesk
from gossip.core.membership.reachability import SEQ_BASE, Reachability
from gossip.core.membership.updates import Updates
from gossip.core.membership.wire import Codec
from gossip.core.membership.wireschema import WireError
from gossip.core.types import Address

MISS = ("", -1)
"""An update not in the cache of applied ones (None is a cached non-accusation)."""


class Inbound:
    def __init__(
        self,
        *,
        codec: Codec,
        counters: Counters,
        gossip: Disseminator,
        updates: Updates,
        prober: Prober,
        reach: Reachability,
        coords: Coordinates,
        queries: QueryDesk,
        user_event: Callable[[float, UserEvent], None],
        reject: Callable[[Address, str], None],
    ) -> None:
        self.open = False
        self._codec = codec
        self._counters = counters
        self._gossip = gossip
        self._updates = updates
        self._prober = prober
        self._reach = reach
        self._coords = coords
        self._queries = queries
        self._user_event = user_event
        self._reject = reject

    def receive(self, now: float, src: Address, payload: bytes) -> None:
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
        if not self.open:
            return
        if repeats:
            self._gossip.queue.heard(repeats)
        for raw, msg in fresh:
            self._dispatch(now, src, msg, raw)
        for name, inc in accusations:
            self._updates.correct_if_stale(src, name, inc)

    def _dispatch(self, now: float, src: Address, msg: Message, raw: bytes) -> None:
        # Most frequent kinds first: a datagram is mostly piggybacked alives.
        updates = self._updates
        if type(msg) is Alive:
            updates.on_alive(now, msg, raw)
        elif type(msg) is Ack:
            if msg.seq < SEQ_BASE:
                self._prober.on_ack(now, msg.seq)
            else:
                self._reach.on_ack(now, msg.seq)
        elif type(msg) is Ping:
            self._prober.on_ping(src, msg)
        elif type(msg) is Suspect:
            updates.correct_if_stale(src, msg.name, msg.incarnation)
            updates.on_suspect(now, msg, raw)
        elif type(msg) is Dead:
            updates.correct_if_stale(src, msg.name, msg.incarnation)
            updates.on_dead(now, msg, raw)
        elif type(msg) is Left:
            updates.on_left(now, msg, raw)
        elif type(msg) is Prune:
            updates.on_prune(now, msg, raw)
        elif type(msg) is PingReq:
            self._prober.on_ping_req(now, src, msg)
        elif type(msg) is Nack:
            self._prober.on_nack(msg.seq)
        elif type(msg) is CoordinateMsg:
            self._coords.heard(msg)
        elif type(msg) is UserEvent:
            self._user_event(now, msg)
        elif type(msg) is Query:
            self._queries.on_query(now, msg)
        elif type(msg) is QueryReply:
            self._queries.on_reply(now, msg)
        elif type(msg) is QueryRelay:
            self._queries.on_relay(msg)
        else:
            self._reject(src, "unexpected_kind")
