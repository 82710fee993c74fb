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

Rules: decoding is bounded and strict. The input size is checked before any
parsing, cbor2 rejects impossible lengths and nesting past its depth limit,
trailing bytes are refused, every field is type- and range-checked against
a fixed schema before a message value exists, and every item must be in the
one canonical encoding the sender side produces (so equal updates are equal
bytes, which the node's cache of applied updates relies on). Any failure raises WireError
with a short stable reason token, which the node turns into a counted
DatagramRejected output: nothing else may escape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import cbor2

from gossip.core.membership import wirefast
from gossip.core.membership.config import MAX_UDP_PAYLOAD, Config
from gossip.core.membership.messages import (
    Ack,
    Alive,
    CoordinateMsg,
    Dead,
    Kind,
    Left,
    Message,
    Nack,
    Ping,
    PingReq,
    Prune,
    PushPull,
    PushPullReply,
    Query,
    QueryRelay,
    QueryReply,
    StateEntry,
    Suspect,
    SyncRows,
    UserEvent,
)
from gossip.core.types import MemberInfo, MemberState

VERSION = 1
MAX_MESSAGES_PER_PACKET = 1024
MAX_STATE_ENTRIES = 100_000
MAX_TAGS = 64
MAX_HOST_CHARS = 255
MAX_UINT = 2**63 - 1
MAX_FILTER_CHARS = 256
"""A query's node filter (a glob) is at most this long."""
MAX_RELAY = 5
"""A query asks for at most this many relays per reply (queryrelay.py)."""
MAX_DIMENSIONS = 16
MAX_MICROS = 100_000_000
"""Bound of a coordinate's fixed-point values (100 s in microseconds)."""
_STATES = tuple(MemberState)


class WireError(ValueError):
    """Input that is not a valid packet; `reason` is a stable token."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class VersionRefused(WireError):
    """A well-formed envelope in a wire version outside our range."""

    def __init__(self, version: int) -> None:
        super().__init__("bad_version", f"version {version} is outside our range")
        self.version = version


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


def _loads_strict(data: bytes) -> Any:
    """cbor2 decoding with every failure mapped to a WireError reason, and the
    input required to be exactly the canonical encoding of what it decodes to
    (which also refuses trailing bytes)."""
    if not data:
        raise WireError("truncated", "empty")
    try:
        obj = cbor2.loads(data)
    except cbor2.CBORDecodeEOF as exc:
        raise WireError("truncated", str(exc)) from None
    except RecursionError:
        raise WireError("too_deep") from None
    except Exception as exc:  # cbor2 raises several types on bad input
        if "nesting depth" in str(exc):
            raise WireError("too_deep") from None
        raise WireError("bad_cbor", type(exc).__name__) from None
    try:
        again: bytes = cbor2.dumps(obj)
    except Exception:  # e.g. a self-referencing structure built with shared refs
        raise WireError("non_canonical", "cannot be re-encoded") from None
    if again != data:
        if data.startswith(again):
            raise WireError("trailing_bytes", f"{len(data) - len(again)} bytes")
        raise WireError("non_canonical", "not the canonical encoding")
    return obj


class Codec:
    """Encodes and decodes packets for one cluster under one config's limits."""

    def __init__(self, cfg: Config) -> None:
        self.cluster = cfg.cluster_name
        self.versions = (cfg.protocol_min, cfg.protocol_max)
        self.version = VERSION
        self.prefix = b""
        self.speak(cfg.protocol_min)
        self.version_in = self.version
        """The version of the last packet or frame split (its messages' layout)."""
        self.refused_version = 0
        """The version of the last envelope refused as outside our range."""
        self.max_name = cfg.max_name_bytes
        self.max_tags_bytes = cfg.max_tags_bytes
        self.max_stream_bytes = cfg.max_stream_bytes
        self.max_event_bytes = cfg.max_event_bytes
        self.budget = cfg.packet_budget
        self._parsers: dict[int, Callable[[list[Any]], Message]] = {
            Kind.PING: self._ping,
            Kind.PING_REQ: self._ping_req,
            Kind.ACK: self._ack,
            Kind.NACK: self._nack,
            Kind.ALIVE: self._alive,
            Kind.SUSPECT: self._suspect,
            Kind.DEAD: self._dead,
            Kind.LEFT: self._left,
            Kind.PRUNE: self._prune,
            Kind.PUSH_PULL: self._push_pull,
            Kind.PUSH_PULL_REPLY: self._push_pull_reply,
            Kind.COORDINATE: self._coordinate,
            Kind.USER_EVENT: self._user_event,
            Kind.QUERY: self._query,
            Kind.QUERY_REPLY: self._query_reply,
            Kind.QUERY_RELAY: self._query_relay,
        }

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
        self.speak(self.version_in)
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
        prefix = self._prefix(self.version_in) if reply else self.prefix
        return prefix + b"\x81" + wrap(body)

    # ---- decoding ---------------------------------------------------------

    def split_packet(self, payload: bytes) -> list[bytes]:
        """The encoded messages of a datagram (checked envelope), or WireError."""
        if len(payload) > MAX_UDP_PAYLOAD:
            raise WireError("oversized", f"{len(payload)} bytes")
        small = wirefast.split_small(payload, self.prefix)
        if small is not None:
            self.version_in = self.version
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
        obj = _loads_strict(self._split(payload, 1)[0])
        kind = obj[0] if type(obj) is list and obj and type(obj[0]) is int else None
        if kind == Kind.PUSH_PULL:
            if len(obj) not in (3, 4) or type(obj[1]) is not bool:
                raise WireError("bad_field", "push-pull")
            return SyncRows(obj[1], _rows(obj[2]), _rows(obj[3]) if len(obj) == 4 else ())
        if kind == Kind.PUSH_PULL_REPLY:
            if len(obj) not in (2, 3):
                raise WireError("bad_field", "push-pull reply")
            return SyncRows(None, _rows(obj[1]), _rows(obj[2]) if len(obj) == 3 else ())
        return self._parse_obj(obj)

    def _split(self, payload: bytes, max_messages: int) -> list[bytes]:
        obj = _loads_strict(payload)
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
        self.version_in = version
        return msgs

    def parse(self, raw: bytes) -> Message:
        """One encoded message, strictly: schema-checked and canonical."""
        head = raw[:2]
        if head == wirefast.ACK_HEAD:
            seq = wirefast.decode_ack(raw)
            if seq is not None:
                return Ack(seq)
        elif head == wirefast.PING_HEAD and self.version_in == 1:
            ping = wirefast.decode_ping(raw)
            if ping is not None:
                return Ping(ping[0], self._name(ping[1]))
        return self._parse_obj(_loads_strict(raw))

    def _parse_obj(self, obj: Any) -> Message:
        if type(obj) is not list or not obj:
            raise WireError("bad_envelope", "message is not an array")
        parser = self._parsers.get(obj[0]) if type(obj[0]) is int else None
        if parser is None:
            raise WireError("bad_kind", repr(obj[0])[:20])
        try:
            return parser(obj)
        except WireError:
            raise
        except (TypeError, ValueError):  # wrong arity when unpacking
            raise WireError("bad_field", f"kind {obj[0]}") from None

    # ---- field checks (raise WireError("bad_field")) ------------------------

    def _name(self, x: Any) -> str:
        if type(x) is not str or not x or len(x) > self.max_name:
            raise WireError("bad_field", "name")
        if not x.isascii() and len(x.encode()) > self.max_name:
            raise WireError("bad_field", "name")
        return x

    def _tags(self, x: Any) -> Mapping[str, str]:
        if type(x) is not dict:
            raise WireError("bad_field", "tags")
        if not x:
            return x
        if len(x) > MAX_TAGS:
            raise WireError("bad_field", "too many tags")
        for k, v in x.items():
            if type(k) is not str or type(v) is not str:
                raise WireError("bad_field", "tag is not str to str")
        if len(cbor2.dumps(x)) > self.max_tags_bytes:
            raise WireError("bad_field", "tags too large")
        return x

    # ---- one parser per kind; `_, a, b = raw` raises ValueError on arity ----

    def _ping(self, raw: list[Any]) -> Ping:
        if self.version_in == 1:
            _, seq, target = raw
        else:  # later versions add the sender's version
            _, seq, target, version = raw
            if version != self.version_in:
                raise WireError("bad_field", "ping version")
        return Ping(_uint(seq), self._name(target))

    def _ping_req(self, raw: list[Any]) -> PingReq:
        _, seq, target, host, port = raw
        return PingReq(_uint(seq), self._name(target), (_host(host), _port(port)))

    def _ack(self, raw: list[Any]) -> Ack:
        _, seq = raw
        return Ack(_uint(seq))

    def _nack(self, raw: list[Any]) -> Nack:
        _, seq = raw
        return Nack(_uint(seq))

    def _alive(self, raw: list[Any]) -> Alive:
        _, name, inc, host, port, tags = raw
        return Alive(self._name(name), _uint(inc), (_host(host), _port(port)), self._tags(tags))

    def _suspect(self, raw: list[Any]) -> Suspect:
        _, name, inc, accuser = raw
        return Suspect(self._name(name), _uint(inc), self._name(accuser))

    def _dead(self, raw: list[Any]) -> Dead:
        _, name, inc, accuser = raw
        return Dead(self._name(name), _uint(inc), self._name(accuser))

    def _left(self, raw: list[Any]) -> Left:
        _, name, inc = raw
        return Left(self._name(name), _uint(inc))

    def _prune(self, raw: list[Any]) -> Prune:
        _, name, inc = raw
        return Prune(self._name(name), _uint(inc))

    def _coordinate(self, raw: list[Any]) -> CoordinateMsg:
        _, name, vec, height, error, adjustment = raw
        if type(vec) is not list or not 1 <= len(vec) <= MAX_DIMENSIONS:
            raise WireError("bad_field", "coordinate dimensions")
        return CoordinateMsg(
            self._name(name),
            tuple(_bounded(v, -MAX_MICROS, MAX_MICROS) for v in vec),
            _bounded(height, 0, MAX_MICROS),
            _bounded(error, 0, MAX_MICROS),
            _bounded(adjustment, -MAX_MICROS, MAX_MICROS),
        )

    def _user_event(self, raw: list[Any]) -> UserEvent:
        _, ltime, name, payload, coalesce = raw
        if type(payload) is not bytes or type(coalesce) is not bool:
            raise WireError("bad_field", "user event")
        name = self._name(name)
        if len(name.encode()) + len(payload) > self.max_event_bytes:
            raise WireError("bad_field", "user event too large")
        return UserEvent(_uint(ltime), name, payload, coalesce)

    def _query(self, raw: list[Any]) -> Query:
        relay = 0
        if len(raw) == 12:  # the relay factor is sent only when not 0
            *raw, relay = raw
            if type(relay) is not int or not 1 <= relay <= MAX_RELAY:
                raise WireError("bad_field", "query relay")
        _, ltime, qid, name, payload, origin, host, port, node, tags, ack = raw
        if type(payload) is not bytes or type(ack) is not bool:
            raise WireError("bad_field", "query")
        name = self._name(name)
        if len(name.encode()) + len(payload) > self.max_event_bytes:
            raise WireError("bad_field", "query too large")
        if type(node) is not str or len(node) > MAX_FILTER_CHARS:
            raise WireError("bad_field", "query node filter")
        return Query(
            _uint(ltime),
            _uint(qid),
            name,
            payload,
            self._name(origin),
            (_host(host), _port(port)),
            node,
            self._tags(tags),
            ack,
            relay,
        )

    def _query_reply(self, raw: list[Any]) -> QueryReply:
        _, qid, responder, ack, payload = raw
        if type(payload) is not bytes or type(ack) is not bool:
            raise WireError("bad_field", "query reply")
        if len(payload) > MAX_UDP_PAYLOAD:
            raise WireError("bad_field", "query reply too large")
        return QueryReply(_uint(qid), self._name(responder), ack, payload)

    def _query_relay(self, raw: list[Any]) -> QueryRelay:
        _, qid, responder, ack, payload, origin, host, port = raw
        reply = self._query_reply([Kind.QUERY_REPLY, qid, responder, ack, payload])
        return QueryRelay(reply, self._name(origin), (_host(host), _port(port)))

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
        e = _loads_strict(raw)
        if type(e) is not list or len(e) != 6:
            raise WireError("bad_field", "state entry")
        state, name, inc, host, port, tags = e
        if type(state) is not int or not 0 <= state <= 3:
            raise WireError("bad_field", "member state")
        if tags:
            tags = self._tags(tags)
        elif type(tags) is not dict:
            raise WireError("bad_field", "tags")
        return StateEntry(
            self._name(name), (_host(host), _port(port)), _uint(inc), _STATES[state], tags
        )

    def _push_pull(self, raw: list[Any]) -> PushPull:
        _, join, rows = raw
        if type(join) is not bool:
            raise WireError("bad_field", "join flag")
        return PushPull(join, tuple(self.parse_entry(r) for r in _rows(rows)))

    def _push_pull_reply(self, raw: list[Any]) -> PushPullReply:
        _, rows = raw
        return PushPullReply(tuple(self.parse_entry(r) for r in _rows(rows)))


def _rows(x: Any) -> tuple[bytes, ...]:
    """A push-pull's entry list: at most MAX_STATE_ENTRIES non-empty byte strings."""
    if type(x) is not list or len(x) > MAX_STATE_ENTRIES:
        raise WireError("bad_field", "state entries")
    for r in x:
        if type(r) is not bytes or not r:
            raise WireError("bad_field", "state entry")
    return tuple(x)


def _bounded(x: Any, low: int, high: int) -> int:
    if type(x) is not int or not low <= x <= high:
        raise WireError("bad_field", "integer out of range")
    return x


def _uint(x: Any) -> int:
    if type(x) is not int or not 0 <= x <= MAX_UINT:
        raise WireError("bad_field", "unsigned integer")
    return x


def _host(x: Any) -> str:
    if type(x) is not str or not x or len(x) > MAX_HOST_CHARS:
        raise WireError("bad_field", "host")
    return x


def _port(x: Any) -> int:
    if type(x) is not int or not 0 <= x <= 65535:
        raise WireError("bad_field", "port")
    return x
