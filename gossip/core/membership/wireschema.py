"""The message schema: every kind's fields checked, strictly and within bounds.

Rules: decoding is bounded and strict. The input size is checked (by the
codec) before any parsing, cbor2 rejects impossible lengths and nesting past
its depth limit, trailing bytes are refused, every field is type- and
range-checked against a fixed schema before a message value exists, and every
item must be in the one canonical encoding the sender side produces (so equal
updates are equal bytes, which the node's cache of applied updates relies
on). Any failure raises WireError with a short stable reason token, which the
node turns into a counted DatagramRejected output: nothing else may escape.
A message is laid out as the version of the envelope it came in says
(`version_in`, set by the codec as it splits an envelope); version 2 differs
only in its ping, `[1, seq, target, version]`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import cbor2

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
    UserEvent,
)
from gossip.core.types import MemberState

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


def loads_strict(data: bytes) -> Any:
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


class Schema:
    """Checks messages against the schema, under one config's limits."""

    def __init__(self, cfg: Config) -> None:
        self.max_name = cfg.max_name_bytes
        self.max_tags_bytes = cfg.max_tags_bytes
        self.max_event_bytes = cfg.max_event_bytes
        self.version_in = cfg.protocol_min
        """The version of the envelope the messages parsed now came in."""
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

    def message(self, obj: Any) -> Message:
        """A decoded message array, schema-checked (WireError otherwise)."""
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

    def name(self, x: Any) -> str:
        if type(x) is not str or not x or len(x) > self.max_name:
            raise WireError("bad_field", "name")
        if not x.isascii() and len(x.encode()) > self.max_name:
            raise WireError("bad_field", "name")
        return x

    def tags(self, x: Any) -> Mapping[str, str]:
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
        return Ping(uint(seq), self.name(target))

    def _ping_req(self, raw: list[Any]) -> PingReq:
        _, seq, target, host, port = raw
        return PingReq(uint(seq), self.name(target), (_host(host), _port(port)))

    def _ack(self, raw: list[Any]) -> Ack:
        _, seq = raw
        return Ack(uint(seq))

    def _nack(self, raw: list[Any]) -> Nack:
        _, seq = raw
        return Nack(uint(seq))

    def _alive(self, raw: list[Any]) -> Alive:
        _, name, inc, host, port, tags = raw
        return Alive(self.name(name), uint(inc), (_host(host), _port(port)), self.tags(tags))

    def _suspect(self, raw: list[Any]) -> Suspect:
        _, name, inc, accuser = raw
        return Suspect(self.name(name), uint(inc), self.name(accuser))

    def _dead(self, raw: list[Any]) -> Dead:
        _, name, inc, accuser = raw
        return Dead(self.name(name), uint(inc), self.name(accuser))

    def _left(self, raw: list[Any]) -> Left:
        _, name, inc = raw
        return Left(self.name(name), uint(inc))

    def _prune(self, raw: list[Any]) -> Prune:
        _, name, inc = raw
        return Prune(self.name(name), uint(inc))

    def _coordinate(self, raw: list[Any]) -> CoordinateMsg:
        _, name, vec, height, error, adjustment = raw
        if type(vec) is not list or not 1 <= len(vec) <= MAX_DIMENSIONS:
            raise WireError("bad_field", "coordinate dimensions")
        return CoordinateMsg(
            self.name(name),
            tuple(_bounded(v, -MAX_MICROS, MAX_MICROS) for v in vec),
            _bounded(height, 0, MAX_MICROS),
            _bounded(error, 0, MAX_MICROS),
            _bounded(adjustment, -MAX_MICROS, MAX_MICROS),
        )

    def _user_event(self, raw: list[Any]) -> UserEvent:
        _, ltime, name, payload, coalesce = raw
        if type(payload) is not bytes or type(coalesce) is not bool:
            raise WireError("bad_field", "user event")
        name = self.name(name)
        if len(name.encode()) + len(payload) > self.max_event_bytes:
            raise WireError("bad_field", "user event too large")
        return UserEvent(uint(ltime), name, payload, coalesce)

    def _query(self, raw: list[Any]) -> Query:
        relay = 0
        if len(raw) == 12:  # the relay factor is sent only when not 0
            *raw, relay = raw
            if type(relay) is not int or not 1 <= relay <= MAX_RELAY:
                raise WireError("bad_field", "query relay")
        _, ltime, qid, name, payload, origin, host, port, node, tags, ack = raw
        if type(payload) is not bytes or type(ack) is not bool:
            raise WireError("bad_field", "query")
        name = self.name(name)
        if len(name.encode()) + len(payload) > self.max_event_bytes:
            raise WireError("bad_field", "query too large")
        if type(node) is not str or len(node) > MAX_FILTER_CHARS:
            raise WireError("bad_field", "query node filter")
        return Query(
            uint(ltime),
            uint(qid),
            name,
            payload,
            self.name(origin),
            (_host(host), _port(port)),
            node,
            self.tags(tags),
            ack,
            relay,
        )

    def _query_reply(self, raw: list[Any]) -> QueryReply:
        _, qid, responder, ack, payload = raw
        if type(payload) is not bytes or type(ack) is not bool:
            raise WireError("bad_field", "query reply")
        if len(payload) > MAX_UDP_PAYLOAD:
            raise WireError("bad_field", "query reply too large")
        return QueryReply(uint(qid), self.name(responder), ack, payload)

    def _query_relay(self, raw: list[Any]) -> QueryRelay:
        _, qid, responder, ack, payload, origin, host, port = raw
        reply = self._query_reply([Kind.QUERY_REPLY, qid, responder, ack, payload])
        return QueryRelay(reply, self.name(origin), (_host(host), _port(port)))

    def entry(self, raw: bytes) -> StateEntry:
        """One encoded push-pull entry, strictly (WireError "bad_field")."""
        e = loads_strict(raw)
        if type(e) is not list or len(e) != 6:
            raise WireError("bad_field", "state entry")
        state, name, inc, host, port, tags = e
        if type(state) is not int or not 0 <= state <= 3:
            raise WireError("bad_field", "member state")
        if tags:
            tags = self.tags(tags)
        elif type(tags) is not dict:
            raise WireError("bad_field", "tags")
        return StateEntry(
            self.name(name), (_host(host), _port(port)), uint(inc), _STATES[state], tags
        )

    def _push_pull(self, raw: list[Any]) -> PushPull:
        _, join, rows = raw
        if type(join) is not bool:
            raise WireError("bad_field", "join flag")
        return PushPull(join, tuple(self.entry(r) for r in rows(rows)))

    def _push_pull_reply(self, raw: list[Any]) -> PushPullReply:
        _, rows = raw
        return PushPullReply(tuple(self.entry(r) for r in rows(rows)))


def rows(x: Any) -> tuple[bytes, ...]:
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


def uint(x: Any) -> int:
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
