"""The wire format: a versioned CBOR envelope holding one or more messages.

A datagram (and a stream frame alike) is the CBOR array

    [version, cluster_name, [bstr(message), ...]]   message = [kind, field, ...]

The envelope's layout is the same in every version; the version says how its
messages are laid out. A codec decodes every version in its node's range
(versions.py) and encodes in the one the node chose to speak. Version 2
differs only in its ping, `[1, seq, target, version]`.

so one datagram is naturally a compound packet: a ping or ack followed by as
many piggybacked updates as fit the UDP budget. Each message travels as a
byte string holding its own CBOR encoding: packets are assembled by
concatenating pre-encoded messages under a pre-encoded envelope prefix (so a
packet's size is exact while it is built), and a receiver can recognise an
update it has already applied by its bytes alone, without parsing it.

Rules: encoding is canonical (equal updates are equal bytes); decoding is
bounded and strict: the envelope is checked here (size first, then version,
cluster and message count), each message against its schema in wireschema.py.
Any failure raises WireError, which the node counts as DatagramRejected.
"""

from __future__ import annotations

from collections.abc import Sequence

import cbor2

from gossip.core.membership import wirefast
from gossip.core.membership.config import MAX_UDP_PAYLOAD, Config
from gossip.core.membership.messages import (
    Ack,
    Kind,
    Message,
    Ping,
    PushPull,
    PushPullReply,
    StateEntry,
    SyncRows,
    UserEvent,
)
from gossip.core.membership.wireschema import (
    MAX_UINT,
    Schema,
    VersionRefused,
    WireError,
    loads_strict,
    rows,
)
from gossip.core.types import MemberInfo, MemberState

VERSION = 1
MAX_MESSAGES_PER_PACKET = 1024


def _array_header(n: int) -> bytes:
    return wirefast.head(0x80, n)


ARRAY_HEADER_MAX = 3
"""Bytes of the message-list header for up to 65535 messages."""


def encode_message(msg: Message) -> bytes:
    """The CBOR array of one message (wrap it before placing it in a packet)."""
    if type(msg) is Ack:
        return wirefast.encode_ack(msg.seq)
    if type(msg) is Ping:
        return wirefast.encode_ping(msg.seq, msg.target)
    out: bytes = cbor2.dumps([msg.KIND, *msg.fields()])
    return out


def state_row(m: MemberInfo) -> bytes:
    """The encoded push-pull entry of one member (encode_entry of its StateEntry)."""
    row = [int(m.state), m.name, m.incarnation, m.address[0], m.address[1], dict(m.tags)]
    out: bytes = cbor2.dumps(row)
    return out


# An entry is [state, name, inc, host, port, tags] and an alive message
# [5, name, inc, host, port, tags]: both 6-element arrays whose first item
# takes one byte, so each converts to the other by swapping that byte.
_ALIVE_HEAD = b"\x86" + bytes((Kind.ALIVE,))
_ALIVE_ENTRY_HEAD = b"\x86" + bytes((int(MemberState.ALIVE),))


def alive_from_entry(row: bytes) -> bytes:
    """The encoded Alive message of a (valid) entry of an alive member."""
    return _ALIVE_HEAD + row[2:]


def entry_from_alive(raw: bytes) -> bytes:
    """The encoded entry of an alive member, from its (valid) Alive message."""
    return _ALIVE_ENTRY_HEAD + raw[2:]


def wrap(encoded: bytes) -> bytes:
    """An encoded message as the CBOR byte string a packet carries."""
    return wirefast.head(0x40, len(encoded)) + encoded


class Codec:
    """Encodes and decodes packets for one cluster under one config's limits."""

    def __init__(self, cfg: Config) -> None:
        self.cluster = cfg.cluster_name
        self.versions = (cfg.protocol_min, cfg.protocol_max)
        self.version = VERSION
        self.prefix = b""
        self.speak(cfg.protocol_min)
        self.schema = Schema(cfg)
        """The schema messages are checked against, and the version of the last
        packet or frame split (its messages' layout: schema.version_in)."""
        self.refused_version = 0
        """The version of the last envelope refused as outside our range."""
        self.max_stream_bytes = cfg.max_stream_bytes
        self.budget = cfg.packet_budget

    # ---- encoding ---------------------------------------------------------

    def speak(self, version: int) -> None:
        """Encode in `version` from now on (one in our range)."""
        self.version = version
        self.prefix = self._prefix(version)

    def _prefix(self, version: int) -> bytes:
        return b"\x83" + cbor2.dumps(version) + cbor2.dumps(self.cluster)

    def encode(self, msg: Message) -> bytes:
        """encode_message in the version spoken now."""
        if self.version >= 2 and type(msg) is Ping:
            out: bytes = cbor2.dumps([Kind.PING, msg.seq, msg.target, self.version])
            return out
        return encode_message(msg)

    @property
    def room(self) -> int:
        """Bytes left for wrapped messages in one datagram."""
        return self.budget - len(self.prefix) - ARRAY_HEADER_MAX

    def packet(self, parts: list[bytes]) -> bytes:
        """A datagram from wrapped messages (the caller keeps it in budget)."""
        return self.prefix + _array_header(len(parts)) + b"".join(parts)

    def frame(self, msg: Message) -> bytes:
        """A stream frame holding one message."""
        return self.prefix + b"\x81" + wrap(self.encode(msg))

    def reply_frame(self, msg: Message) -> bytes:
        """A frame answering the request frame just decoded, in its version
        (which the requester speaks, whatever the cluster speaks)."""
        spoken = self.version
        self.speak(self.schema.version_in)
        try:
            return self.frame(msg)
        finally:
            self.speak(spoken)

    def sync_frame(
        self,
        join: bool | None,
        rows: list[bytes],
        events: Sequence[bytes] = (),
        *,
        reply: bool = False,
    ) -> bytes:
        """The frame of PushPull(join, entries) (or, with join None, of
        PushPullReply(entries)) from wrapped entries (wrap(state_row(m))): the
        same bytes as frame(), by concatenation. With `reply`, in the version
        of the request just decoded (as reply_frame). Wrapped user events, if
        any, follow as one more list (SyncRows.events)."""
        more = 1 if events else 0
        if join is None:
            head = wirefast.head(0x80, 2 + more) + cbor2.dumps(Kind.PUSH_PULL_REPLY)
        else:
            head = wirefast.head(0x80, 3 + more) + cbor2.dumps(Kind.PUSH_PULL)
            head += b"\xf5" if join else b"\xf4"
        body = head + _array_header(len(rows)) + b"".join(rows)
        if events:
            body += _array_header(len(events)) + b"".join(events)
        prefix = self._prefix(self.schema.version_in) if reply else self.prefix
        return prefix + b"\x81" + wrap(body)

    # ---- decoding ---------------------------------------------------------

    def split_packet(self, payload: bytes) -> list[bytes]:
        """The encoded messages of a datagram (checked envelope), or WireError."""
        if len(payload) > MAX_UDP_PAYLOAD:
            raise WireError("oversized", f"{len(payload)} bytes")
        small = wirefast.split_small(payload, self.prefix)
        if small is not None:
            self.schema.version_in = self.version
            return small
        return self._split(payload, MAX_MESSAGES_PER_PACKET)

    def decode_packet(self, payload: bytes) -> list[Message]:
        """All messages of a datagram, or WireError."""
        return [self.parse(raw) for raw in self.split_packet(payload)]

    def decode_frame(self, payload: bytes) -> Message:
        """The single message of a stream frame, or WireError."""
        msg = self.decode_sync_frame(payload)
        if not isinstance(msg, SyncRows):
            return msg
        entries = tuple(self.parse_entry(raw) for raw in msg.rows)
        return PushPullReply(entries) if msg.join is None else PushPull(msg.join, entries)

    def decode_sync_frame(self, payload: bytes) -> Message | SyncRows:
        """Like decode_frame, but a push-pull comes back as SyncRows, its
        entries checked to be byte strings and left unparsed."""
        if len(payload) > self.max_stream_bytes:
            raise WireError("oversized", f"{len(payload)} bytes")
        obj = loads_strict(self._split(payload, 1)[0])
        kind = obj[0] if type(obj) is list and obj and type(obj[0]) is int else None
        if kind == Kind.PUSH_PULL:
            if len(obj) not in (3, 4) or type(obj[1]) is not bool:
                raise WireError("bad_field", "push-pull")
            return SyncRows(obj[1], rows(obj[2]), rows(obj[3]) if len(obj) == 4 else ())
        if kind == Kind.PUSH_PULL_REPLY:
            if len(obj) not in (2, 3):
                raise WireError("bad_field", "push-pull reply")
            return SyncRows(None, rows(obj[1]), rows(obj[2]) if len(obj) == 3 else ())
        return self.schema.message(obj)

    def _split(self, payload: bytes, max_messages: int) -> list[bytes]:
        obj = loads_strict(payload)
        if type(obj) is not list or len(obj) != 3:
            raise WireError("bad_envelope", "not a 3-element array")
        version, cluster, msgs = obj
        if type(version) is not int:
            raise WireError("bad_version", repr(version)[:20])
        if not self.versions[0] <= version <= self.versions[1]:
            if not 0 < version <= MAX_UINT:
                raise WireError("bad_version", repr(version)[:20])
            self.refused_version = version
            raise VersionRefused(version)
        if cluster != self.cluster:
            raise WireError("wrong_cluster", repr(cluster)[:40])
        if type(msgs) is not list or not msgs:
            raise WireError("bad_envelope", "no message list")
        if len(msgs) > max_messages:
            raise WireError("too_many", f"{len(msgs)} messages")
        for raw in msgs:
            if type(raw) is not bytes or not raw:
                raise WireError("bad_envelope", "message is not a byte string")
        self.schema.version_in = version
        return msgs

    def parse(self, raw: bytes) -> Message:
        """One encoded message, strictly: schema-checked and canonical."""
        head = raw[:2]
        if head == wirefast.ACK_HEAD:
            seq = wirefast.decode_ack(raw)
            if seq is not None:
                return Ack(seq)
        elif head == wirefast.PING_HEAD and self.schema.version_in == 1:
            ping = wirefast.decode_ping(raw)
            if ping is not None:
                return Ping(ping[0], self.schema.name(ping[1]))
        return self.schema.message(loads_strict(raw))

    def parse_events(self, raws: tuple[bytes, ...]) -> list[UserEvent]:
        """A push-pull's user events, strictly (WireError "bad_field")."""
        events = []
        for raw in raws:
            msg = self.parse(raw)
            if type(msg) is not UserEvent:
                raise WireError("bad_field", "not a user event")
            events.append(msg)
        return events

    def parse_entry(self, raw: bytes) -> StateEntry:
        """One encoded push-pull entry, strictly (WireError "bad_field")."""
        return self.schema.entry(raw)
