"""What the core asks of its shell, and what it tells the world.

Rules: the core never performs I/O; it appends these values to an outbox that
the shell drains with `take_outputs()` after every input. Commands (Send,
OpenStream, ResolveSeeds: `Command`) must be carried out; notifications
(everything else: `Notification`) are for logs, metrics and user callbacks
and may be ignored. `Output` is the closed union of both: a new output is
added to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import final

from gossip.core.types import Address, MemberInfo

# ---- commands -------------------------------------------------------------


@final
@dataclass(frozen=True, slots=True)
class Send:
    """Send one UDP datagram. A failed send is simply a lost packet."""

    to: Address
    payload: bytes


@final
@dataclass(frozen=True, slots=True)
class OpenStream:
    """Open a TCP stream to `to`, write `payload` as one request frame, read one
    response frame, then report back with `Node.receive_stream_response(now,
    stream_id, payload)` or, on any failure or timeout, `Node.stream_failed(now,
    stream_id, reason)`. Used for push-pull state sync and the TCP fallback ping.
    """

    to: Address
    stream_id: int
    payload: bytes
    timeout: float
    """Seconds from now. Zero or less when the node was stalled past the probe's
    deadline: the shell then reports a timeout at once."""


@final
@dataclass(frozen=True, slots=True)
class ResolveSeeds:
    """Resolve the seed names again and pass the addresses to
    `Node.set_seeds(now, seeds)`, which joins them. Emitted only by a node
    started with `named_seeds=True`, when the join-retry policy
    (joinretry.py) wants its seeds tried again."""


# ---- notifications: membership ---------------------------------------------


@final
@dataclass(frozen=True, slots=True)
class MemberJoined:
    member: MemberInfo


@final
@dataclass(frozen=True, slots=True)
class MemberUpdated:
    """Tags or address of an alive member changed."""

    member: MemberInfo


@final
@dataclass(frozen=True, slots=True)
class MemberSuspected:
    member: MemberInfo
    accuser: str
    """Who raised the suspicion (this node's name when it was our own probe)."""
    confirmations: int
    timeout: float
    """The suspicion timeout as computed now (Lifeguard)."""


@final
@dataclass(frozen=True, slots=True)
class MemberFailed:
    member: MemberInfo
    accuser: str
    confirmations: int
    health: int
    """This node's local health score when the verdict was taken."""


@final
@dataclass(frozen=True, slots=True)
class MemberRecovered:
    """A suspect member was heard alive at a higher incarnation (refuted)."""

    member: MemberInfo


@final
@dataclass(frozen=True, slots=True)
class MemberLeft:
    member: MemberInfo


@final
@dataclass(frozen=True, slots=True)
class MemberReaped:
    """A dead or left member was forgotten after the reap interval."""

    name: str


@final
@dataclass(frozen=True, slots=True)
class SelfRefuted:
    """This node heard itself suspected or declared dead and refuted it."""

    accused_state: str
    accuser: str
    incarnation: int
    """The new incarnation this node now advertises."""


@final
@dataclass(frozen=True, slots=True)
class IncarnationChanged:
    """This node's incarnation changed; the shell persists it under --data-dir."""

    incarnation: int


@final
@dataclass(frozen=True, slots=True)
class NameConflict:
    """Two live nodes claim one name at different addresses. Rule: the higher
    incarnation wins; at equal incarnation the address already holding the
    name keeps it. The shell should log this loudly: it needs an operator."""

    name: str
    holder: Address
    """The address this node had for the name."""
    claimant: Address
    """The other address claiming it."""
    winner: Address


# ---- notifications: probing and diagnostics ---------------------------------


@final
@dataclass(frozen=True, slots=True)
class ProbeTimedOut:
    target: str
    indirect_helpers: int
    health: int


@final
@dataclass(frozen=True, slots=True)
class HealthChanged:
    health: int
    reason: str


@final
@dataclass(frozen=True, slots=True)
class DatagramRejected:
    source: Address
    reason: str
    """A short stable token: truncated, oversized, bad_cbor, bad_version,
    wrong_cluster, bad_kind, bad_field, too_deep, decrypt_failed, ..."""


@final
@dataclass(frozen=True, slots=True)
class ProtocolRefused:
    """A peer speaks no wire version this node speaks (versions.py): a member
    whose advertised range misses ours (`member` named), or a packet or
    stream frame in a version outside our range (`member` empty, `theirs`
    that version twice). Ranges are (min, max); (0, 0) is an unreadable one."""

    member: str
    address: Address
    theirs: tuple[int, int]
    ours: tuple[int, int]


@final
@dataclass(frozen=True, slots=True)
class PushPullCompleted:
    peer: Address
    members: int
    bytes_sent: int
    bytes_received: int
    join: bool


@final
@dataclass(frozen=True, slots=True)
class Joined:
    """The first push-pull with a seed succeeded: this node is part of a cluster."""

    via: Address


@final
@dataclass(frozen=True, slots=True)
class LeaveCompleted:
    """The `left` update was disseminated (or the leave timeout passed); the
    shell may now stop."""


@final
@dataclass(frozen=True, slots=True)
class UserEventReceived:
    """A user event to deliver (fired here or heard from gossip), once."""

    ltime: int
    name: str
    payload: bytes
    coalesce: bool


@final
@dataclass(frozen=True, slots=True)
class QueryReceived:
    """A query whose filters this node matches: answer it with Node.respond."""

    qid: int
    ltime: int
    name: str
    payload: bytes
    origin: str
    address: Address


@final
@dataclass(frozen=True, slots=True)
class QueryAnswered:
    """An ack or a response to a query of ours, once per responder and kind."""

    qid: int
    responder: str
    ack: bool
    payload: bytes


@final
@dataclass(frozen=True, slots=True)
class Metric:
    """A counter increment, for the shell's metrics registry."""

    name: str
    value: float = 1.0
    labels: dict[str, str] = field(default_factory=dict)


Command = Send | OpenStream | ResolveSeeds
"""Outputs the shell must carry out."""

Notification = (
    MemberJoined
    | MemberUpdated
    | MemberSuspected
    | MemberFailed
    | MemberRecovered
    | MemberLeft
    | MemberReaped
    | SelfRefuted
    | IncarnationChanged
    | NameConflict
    | ProbeTimedOut
    | HealthChanged
    | DatagramRejected
    | ProtocolRefused
    | PushPullCompleted
    | Joined
    | LeaveCompleted
    | UserEventReceived
    | QueryReceived
    | QueryAnswered
    | Metric
)
"""Outputs for logs, metrics and callbacks (the shell may ignore them)."""

Output = Command | Notification
"""Everything the core emits: a closed union of final classes, so mypy checks
that a consumer dispatching on it (with `type(o) is` or `match`) handles or
deliberately ignores every kind (typing.assert_never)."""
