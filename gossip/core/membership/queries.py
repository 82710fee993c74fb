"""Queries: a question to the members that match a filter, answered directly.

Rules:
- A query travels like a user event (the same queue and byte budget, after
  the membership updates), stamped with the queries' own Lamport clock. It is
  known by (ltime, qid): a duplicate, or one older than `event_window`
  Lamport times, is dropped.
- The receiver checks the filters: `node` is a glob on its name, `tags` a
  glob per tag (a tag it lacks fails). Globs, not regular expressions: a glob
  (fnmatch) compiles to a pattern with no backtracking blow-up, so a query
  cannot stall a receiver. A filter is at most 256 characters.
- A matching receiver acks at once when asked (a QueryReply sent straight to
  the origin's address, REPLY_COPIES times, and through the query's relays:
  queryrelay.py) and reports QueryReceived; the shell answers with
  Node.respond(), sent the same way when it fits reply_room, else over a
  stream by the shell (Node.receive_query_reply at the origin).
- Incoming queries are bounded: a receiver takes on (acks and reports) at
  most INCOMING_BURST at once and INCOMING_PER_S a second after that; the
  rest are still passed on but dropped here, counted as queries_dropped.
- The origin accepts, until the query's deadline, one ack and one response
  per responder, by whatever path; anything else is dropped.
"""

from __future__ import annotations

import fnmatch
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from gossip.core.membership import outputs as out
from gossip.core.membership.config import Config
from gossip.core.membership.counters import CountFn
from gossip.core.membership.messages import Message, Query, QueryRelay, QueryReply
from gossip.core.membership.queryrelay import PickRelays, check_relay, forward_refusal, relay_copies
from gossip.core.membership.tokenbucket import TokenBucket
from gossip.core.membership.wire import encode_message, wrap
from gossip.core.types import Address, MemberInfo

MAX_FILTER_CHARS = 256
REPLY_COPIES = 2
"""Each ack and answer is sent this many times (the asker keeps one): a
reply crosses the network once, with no retry, so one lost datagram would
lose it; two copies cut a 10 % loss to about 1 %."""
MAX_OPEN = 64
"""Queries of ours open at once; start() refuses more."""
INCOMING_PER_S = 20.0
INCOMING_BURST = 40
"""Queries of others taken on here: a flood cannot run handlers unboundedly."""
REMEMBERED = 1024
"""Queries taken on whose relay factor is kept for their answer."""


@dataclass
class _Open:
    deadline: float
    acked: set[str] = field(default_factory=set)
    responded: set[str] = field(default_factory=set)


class Queries:
    def __init__(self, cfg: Config) -> None:
        self.clock = 0
        self.window = cfg.event_window
        self.limit = cfg.max_event_bytes
        self._seen: dict[int, set[int]] = {}
        self._open: dict[int, _Open] = {}

    def start(
        self,
        now: float,
        qid: int,
        name: str,
        payload: bytes,
        origin: tuple[str, Address],
        node: str,
        tags: Mapping[str, str],
        ack: bool,
        timeout: float,
        relay: int = 0,
    ) -> Query:
        """A new query of ours (ValueError if too large, too many or a bad filter)."""
        self._expire(now)
        check_relay(relay)
        size = len(name.encode()) + len(payload)
        if not name or size > self.limit:
            raise ValueError(
                f"a query's name and payload take {size} bytes; the limit is {self.limit}"
            )
        if len(self._open) >= MAX_OPEN:
            raise ValueError(f"at most {MAX_OPEN} queries may be open at once")
        for pattern in (node, *tags.values()):
            if len(pattern) > MAX_FILTER_CHARS:
                raise ValueError(f"a filter is at most {MAX_FILTER_CHARS} characters")
        query = Query(
            self.clock, qid, name, payload, origin[0], origin[1], node, dict(tags), ack, relay
        )
        self._open[qid] = _Open(now + timeout)
        self.receive(query)
        return query

    def receive(self, query: Query) -> bool:
        """True if this query is new here (it is then passed on)."""
        if query.ltime >= self.clock:
            self.clock = query.ltime + 1
        horizon = self.clock - self.window
        if query.ltime < horizon:
            return False
        qids = self._seen.setdefault(query.ltime, set())
        if query.qid in qids:
            return False
        qids.add(query.qid)
        if len(self._seen) > 2 * self.window:
            for t in [t for t in self._seen if t < horizon]:
                del self._seen[t]
        return True

    def reply(self, now: float, reply: QueryReply) -> bool:
        """True if `reply` answers an open query of ours for the first time."""
        state = self._open.get(reply.qid)
        if state is None or now > state.deadline:
            return False
        seen = state.acked if reply.ack else state.responded
        if reply.responder in seen:
            return False
        seen.add(reply.responder)
        return True

    def _expire(self, now: float) -> None:
        for qid in [q for q, s in self._open.items() if now > s.deadline]:
            del self._open[qid]


def matches(query: Query, name: str, tags: Mapping[str, str]) -> bool:
    """Does a member called `name` with `tags` pass the query's filters?"""
    return filter_matches(query.node, query.tags, name, tags)


def filter_matches(
    node: str, tag_filters: Mapping[str, str], name: str, tags: Mapping[str, str]
) -> bool:
    """The glob `node` matches `name` and each tag glob its tag's value."""
    if not _glob(node).fullmatch(name):
        return False
    for key, pattern in tag_filters.items():
        value = tags.get(key)
        if value is None or not _glob(pattern).fullmatch(value):
            return False
    return True


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern or "*"))


class QueryDesk:
    """The node's part for queries: starts ours, answers others', routes replies."""

    def __init__(
        self,
        name: str,
        address: Address,
        cfg: Config,
        *,
        rng: random.Random,
        tags: Callable[[], Mapping[str, str]],
        send: Callable[[Address, Message], object],
        emit: Callable[[out.Output], None],
        gossip: Callable[[float, bytes], None],
        reply_room: int,
        pick_relays: PickRelays,
        member: Callable[[str], MemberInfo | None],
        count: CountFn,
    ) -> None:
        self._name = name
        self._address = address
        self._rng = rng
        self._tags = tags
        self._send = send
        self._emit = emit
        self._gossip = gossip
        self.reply_room = reply_room
        """The largest answer sent over UDP; a larger one goes over a stream."""
        self._pick = pick_relays
        self._member = member
        self._count = count
        self._incoming = TokenBucket(INCOMING_PER_S, INCOMING_BURST)
        self._taken: dict[int, Query] = {}
        """Queries taken on, by qid (the oldest forgotten past REMEMBERED)."""
        self.queries = Queries(cfg)

    def start(
        self,
        now: float,
        name: str,
        payload: bytes,
        node: str,
        tags: Mapping[str, str],
        ack: bool,
        timeout: float,
        relay: int = 0,
    ) -> int:
        qid = self._rng.getrandbits(48)
        query = self.queries.start(
            now, qid, name, payload, (self._name, self._address), node, tags, ack, timeout, relay
        )
        self._gossip(now, wrap(encode_message(query)))
        self._answer(now, query)
        return qid

    def on_query(self, now: float, query: Query) -> None:
        if self.queries.receive(query):
            self._gossip(now, wrap(encode_message(query)))
            self._answer(now, query)

    def _answer(self, now: float, query: Query) -> None:
        if not matches(query, self._name, self._tags()):
            return
        ours = query.address == self._address
        if not ours and not self._incoming.take(now):
            self._count("queries_dropped", 1, "rate")
            return
        self._taken[query.qid] = query
        if len(self._taken) > REMEMBERED:
            del self._taken[next(iter(self._taken))]
        if query.ack:
            self._reply(query, QueryReply(query.qid, self._name, True, b""), now)
        self._emit(
            out.QueryReceived(
                query.qid, query.ltime, query.name, query.payload, query.origin, query.address
            )
        )

    def respond(self, now: float, qid: int, address: Address, payload: bytes) -> None:
        """Answer query `qid` over UDP (ValueError if it cannot fit reply_room:
        the shell sends such an answer over a stream)."""
        if len(payload) > self.reply_room:
            raise ValueError(
                f"a query response takes {len(payload)} bytes; the limit is {self.reply_room}"
            )
        query = self._taken.get(qid)
        reply = QueryReply(qid, self._name, False, payload)
        if query is None or query.address != address:  # forgotten: straight back only
            self._send_direct(address, reply, now)
        else:
            self._reply(query, reply, now)

    def _reply(self, query: Query, reply: QueryReply, now: float) -> None:
        self._send_direct(query.address, reply, now)
        if query.address != self._address:
            for to, msg in relay_copies(
                query.relay, self._name, query.origin, query.address, reply, self._pick
            ):
                self._send(to, msg)

    def _send_direct(self, address: Address, reply: QueryReply, now: float) -> None:
        if address == self._address:  # our own query
            self.on_reply(now, reply)
        else:
            for _ in range(REPLY_COPIES):
                self._send(address, reply)

    def on_reply(self, now: float, reply: QueryReply) -> None:
        """An ack or answer to a query of ours, by any path (UDP, relay, stream)."""
        if self.queries.reply(now, reply):
            self._emit(out.QueryAnswered(reply.qid, reply.responder, reply.ack, reply.payload))

    def on_relay(self, msg: QueryRelay) -> None:
        """A responder asks us to pass its reply on to the origin (queryrelay.py)."""
        why = forward_refusal(self._name, msg, self._member(msg.origin))
        if why:
            self._count("query_relays_refused", 1, why)
            return
        self._count("query_replies_relayed")
        self._send(msg.address, msg.reply)
