"""The membership protocol's messages as typed values, and their CBOR arrays.

Rules: each message is an immutable value with a fixed kind number; on the
wire it is a CBOR array `[kind, field, ...]` (see wire.py for the envelope).
`fields()` gives the array after the kind; wire.py validates every field's
type and bound before a message value is built, so these classes trust their
inputs. Kinds are the closed enum `Kind`, encoded as their int: the numbers
are part of the wire format, never reuse one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar

import cbor2

from gossip.core.types import Address, MemberState


class Kind(IntEnum):
    """The message kinds (the first item of a message's CBOR array)."""

    PING = 1
    PING_REQ = 2
    ACK = 3
    NACK = 4
    ALIVE = 5
    SUSPECT = 6
    DEAD = 7
    LEFT = 8
    PUSH_PULL = 9
    PUSH_PULL_REPLY = 10
    COORDINATE = 11
    PRUNE = 12
    USER_EVENT = 13
    QUERY = 14
    QUERY_REPLY = 15
    QUERY_RELAY = 16


@dataclass(frozen=True, slots=True)
class Ping:
    """Are you alive? `target` names the intended receiver, so a ping that
    reaches a different node now living at that address is not acked."""

    KIND: ClassVar[Kind] = Kind.PING
    seq: int
    target: str

    def fields(self) -> list[Any]:
        return [self.seq, self.target]


@dataclass(frozen=True, slots=True)
class PingReq:
    """Please probe `target` at `address` for me and relay the ack (or a nack)."""

    KIND: ClassVar[Kind] = Kind.PING_REQ
    seq: int
    target: str
    address: Address

    def fields(self) -> list[Any]:
        return [self.seq, self.target, self.address[0], self.address[1]]


@dataclass(frozen=True, slots=True)
class Ack:
    KIND: ClassVar[Kind] = Kind.ACK
    seq: int

    def fields(self) -> list[Any]:
        return [self.seq]


@dataclass(frozen=True, slots=True)
class Nack:
    """A helper's answer to a ping-req when the target did not ack in time:
    proof that the helper (and our path to it) works, which Lifeguard uses."""

    KIND: ClassVar[Kind] = Kind.NACK
    seq: int

    def fields(self) -> list[Any]:
        return [self.seq]


@dataclass(frozen=True, slots=True)
class Alive:
    KIND: ClassVar[Kind] = Kind.ALIVE
    name: str
    incarnation: int
    address: Address
    tags: Mapping[str, str]

    def fields(self) -> list[Any]:
        return [self.name, self.incarnation, self.address[0], self.address[1], dict(self.tags)]


@dataclass(frozen=True, slots=True)
class Suspect:
    KIND: ClassVar[Kind] = Kind.SUSPECT
    name: str
    incarnation: int
    accuser: str

    def fields(self) -> list[Any]:
        return [self.name, self.incarnation, self.accuser]


@dataclass(frozen=True, slots=True)
class Dead:
    KIND: ClassVar[Kind] = Kind.DEAD
    name: str
    incarnation: int
    accuser: str

    def fields(self) -> list[Any]:
        return [self.name, self.incarnation, self.accuser]


@dataclass(frozen=True, slots=True)
class Left:
    """A graceful leave, announced by the leaving node itself."""

    KIND: ClassVar[Kind] = Kind.LEFT
    name: str
    incarnation: int

    def fields(self) -> list[Any]:
        return [self.name, self.incarnation]


@dataclass(frozen=True, slots=True)
class Prune:
    """Forget `name` now (an operator's force-leave with prune): applies to a
    member held at `incarnation` or lower, whatever its state (forceleave.py)."""

    KIND: ClassVar[Kind] = Kind.PRUNE
    name: str
    incarnation: int

    def fields(self) -> list[Any]:
        return [self.name, self.incarnation]


@dataclass(frozen=True, slots=True)
class CoordinateMsg:
    """The sender's network coordinate (vivaldi.py), sent with its acks when
    coordinates are on. Fixed point, so it is compact and canonical: the
    point, height and adjustment in microseconds, the error in millionths."""

    KIND: ClassVar[Kind] = Kind.COORDINATE
    name: str
    vec_us: tuple[int, ...]
    height_us: int
    error_ppm: int
    adjustment_us: int

    def fields(self) -> list[Any]:
        return [self.name, list(self.vec_us), self.height_us, self.error_ppm, self.adjustment_us]


@dataclass(frozen=True, slots=True)
class UserEvent:
    """A named payload fired by some member, stamped with its Lamport time
    (userevents.py); `coalesce` lets receivers skip it once a newer event of
    the same name was delivered."""

    KIND: ClassVar[Kind] = Kind.USER_EVENT
    ltime: int
    name: str
    payload: bytes
    coalesce: bool

    def fields(self) -> list[Any]:
        return [self.ltime, self.name, self.payload, self.coalesce]


@dataclass(frozen=True, slots=True)
class Query:
    """A question to the members that match `node` (a glob on the name) and
    `tags` (a glob per tag); they answer `origin` directly (queries.py)."""

    KIND: ClassVar[Kind] = Kind.QUERY
    ltime: int
    qid: int
    name: str
    payload: bytes
    origin: str
    address: Address
    node: str
    tags: Mapping[str, str]
    ack: bool
    relay: int = 0
    """Members each reply also goes through (queryrelay.py); sent only when
    not 0, so a query without relays reads the same to older builds."""

    def fields(self) -> list[Any]:
        fields = [
            self.ltime,
            self.qid,
            self.name,
            self.payload,
            self.origin,
            self.address[0],
            self.address[1],
            self.node,
            dict(self.tags),
            self.ack,
        ]
        return [*fields, self.relay] if self.relay else fields


@dataclass(frozen=True, slots=True)
class QueryReply:
    """An ack (`ack` True, empty payload) or a response to query `qid`."""

    KIND: ClassVar[Kind] = Kind.QUERY_REPLY
    qid: int
    responder: str
    ack: bool
    payload: bytes

    def fields(self) -> list[Any]:
        return [self.qid, self.responder, self.ack, self.payload]


@dataclass(frozen=True, slots=True)
class QueryRelay:
    """Please pass `reply` on to the query's origin, `origin` at `address`
    (queryrelay.py): a second path for replies on lossy or one-way links."""

    KIND: ClassVar[Kind] = Kind.QUERY_RELAY
    reply: QueryReply
    origin: str
    address: Address

    def fields(self) -> list[Any]:
        return [*self.reply.fields(), self.origin, self.address[0], self.address[1]]


@dataclass(frozen=True, slots=True)
class StateEntry:
    """One member's state inside a push-pull exchange."""

    name: str
    address: Address
    incarnation: int
    state: MemberState
    tags: Mapping[str, str]

    def fields(self) -> list[Any]:
        # The state leads and the rest is in Alive's order, so an alive
        # entry's bytes and its Alive message's differ in one byte only.
        return [
            int(self.state),
            self.name,
            self.incarnation,
            self.address[0],
            self.address[1],
            dict(self.tags),
        ]


def encode_entry(entry: StateEntry) -> bytes:
    """One entry as a push-pull carries it: the canonical CBOR of its fields."""
    out: bytes = cbor2.dumps(entry.fields())
    return out


@dataclass(frozen=True, slots=True)
class PushPull:
    """A full state exchange over a stream: the request (`PushPull`) carries
    the sender's table and the reply (`PushPullReply`) the receiver's. Each
    entry travels as a byte string of its own encoding, so a receiver can
    skip, unparsed, every entry equal to what it already holds."""

    KIND: ClassVar[Kind] = Kind.PUSH_PULL
    join: bool
    entries: tuple[StateEntry, ...]

    def fields(self) -> list[Any]:
        return [self.join, [encode_entry(e) for e in self.entries]]


@dataclass(frozen=True, slots=True)
class PushPullReply:
    KIND: ClassVar[Kind] = Kind.PUSH_PULL_REPLY
    entries: tuple[StateEntry, ...]

    def fields(self) -> list[Any]:
        return [[encode_entry(e) for e in self.entries]]


@dataclass(frozen=True, slots=True)
class SyncRows:
    """A push-pull request (`join` True or False) or reply (`join` None) with
    its entries still encoded, as the node receives it: only the entries that
    differ from its own are parsed (Codec.parse_entry)."""

    join: bool | None
    rows: tuple[bytes, ...]
    events: tuple[bytes, ...] = ()
    """The sender's recent user events, encoded (userevents.py)."""


Update = Alive | Suspect | Dead | Left | Prune
"""The membership updates that are piggybacked as broadcasts."""

Message = (
    Ping
    | PingReq
    | Ack
    | Nack
    | Alive
    | Suspect
    | Dead
    | Left
    | PushPull
    | PushPullReply
    | UserEvent
    | Query
    | QueryReply
    | QueryRelay
    | CoordinateMsg
    | Prune
)
