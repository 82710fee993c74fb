"""Relayed query replies: a second path from a responder to the query's origin.

Rules:
- A query may ask for up to MAX_RELAY relays (its `relay` factor). A
  responder then sends each ack and answer straight to the origin (as it
  always does) and also once through each of `relay` alive members picked
  at random, never itself nor the origin, as a QueryRelay naming the origin.
- A relay passes a QueryRelay on, as a plain QueryReply, only when it names
  a live (alive or suspect) member other than the relay at exactly that
  address: a relay never relays again, and cannot be used to aim datagrams
  at an address that is not a member's. A refusal is counted with its reason.
- The origin keeps one ack and one answer per responder, whichever path
  brought it first (queries.py); the other copies are dropped.
"""

from __future__ import annotations

from collections.abc import Callable

from gossip.core.membership.messages import QueryRelay, QueryReply
from gossip.core.membership.wireschema import MAX_HOST_CHARS, MAX_RELAY
from gossip.core.types import Address, MemberInfo, MemberState

PickRelays = Callable[[int, tuple[str, ...]], list[MemberInfo]]
"""(count, names to leave out) -> up to `count` random alive members."""


def check_relay(relay: int) -> None:
    """ValueError unless `relay` is a relay factor a query may carry."""
    if not 0 <= relay <= MAX_RELAY:
        raise ValueError(f"relay: at most {MAX_RELAY} members may relay a reply")


def relay_copies(
    query_relay: int, me: str, origin: str, address: Address, reply: QueryReply, pick: PickRelays
) -> list[tuple[Address, QueryRelay]]:
    """The relayed copies of `reply` a responder sends, one per relay picked."""
    if not query_relay:
        return []
    msg = QueryRelay(reply, origin, address)
    return [(m.address, msg) for m in pick(query_relay, (me, origin))]


def forward_refusal(me: str, msg: QueryRelay, origin: MemberInfo | None) -> str:
    """Why this relay must not pass `msg` on ('' when it may)."""
    if msg.origin == me:
        return "to_self"
    if origin is None or origin.state > MemberState.SUSPECT:
        return "origin_not_live"
    if origin.address != msg.address:
        return "address_mismatch"
    return ""


def reply_room(room: int, max_name: int) -> int:
    """The largest answer whose relayed copy (an answer plus the origin's name
    and address, all at their longest) still fits `room` bytes."""
    return room - 2 * max_name - MAX_HOST_CHARS - 48
