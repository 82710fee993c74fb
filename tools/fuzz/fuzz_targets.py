"""Fuzz targets: one function per decoder of untrusted bytes, plus seed inputs.

Rules: a target calls the decoder and swallows only the decoder's documented
typed errors; any other exception escapes and is a finding. Node targets also
check that a refused input leaves the member table as it was.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Callable

from gossip.core.membership import outputs as o
from gossip.core.membership.config import Config
from gossip.core.membership.messages import (
    Ack,
    Alive,
    CoordinateMsg,
    Dead,
    Message,
    Ping,
    Prune,
    PushPull,
    Query,
    QueryReply,
    StateEntry,
    Suspect,
    UserEvent,
)
from gossip.core.membership.node import Node
from gossip.core.membership.wire import Codec
from gossip.core.membership.wireschema import WireError
from gossip.core.types import MemberState
from gossip.runtime import framing, muxframes, snapshot, tagfile
from gossip.runtime.api import parse_query, parse_user_event
from gossip.runtime.http import ApiError, ApiRequest, ApiResponse, HttpServer
from gossip.runtime.memberfilter import FilterError, parse_filter
from gossip.security.keyring import Keyring
from gossip.security.sealer import AesGcmSealer, Policy, SealError
from gossip.testing.httpreplay import replay_connection

Target = Callable[[bytes], None]

_KEY = bytes(range(32))
_RING = Keyring([_KEY, bytes(16)])
_STRICT = AesGcmSealer(_RING, "fuzz")
_LENIENT = AesGcmSealer(_RING, "fuzz", Policy(require_incoming=False))
_PEER = AesGcmSealer(Keyring([_KEY]), "fuzz")

_CFG = Config.for_profile("lan", cluster_name="fuzz")
_CODEC = Codec(_CFG)
_WIDE = Codec(_CFG.replace(protocol_max=2))
"""A codec that decodes both wire versions (version 2 lays pings out differently)."""
_WIDE.speak(2)
_ME, _OTHER = ("10.0.0.1", 7946), ("10.0.0.2", 7946)
_MESSAGES: list[Message] = [
    Ping(7, "me"),
    Ack(7),
    Alive("peer", 1, _OTHER, {"role": "db"}),
    Suspect("me", 0, "peer"),
    Dead("peer", 2, "x"),
    Prune("peer", 1),
    PushPull(False, (StateEntry("peer", _OTHER, 1, MemberState.ALIVE, {}),)),
    CoordinateMsg("peer", (1500, -20, 0, 7, 0, 0, 0, 3), 120, 250_000, -40),
    UserEvent(3, "deploy", b"v1", True),
    Query(4, 77, "uptime", b"", "peer", _OTHER, "m*", {"role": "db"}, True),
    QueryReply(77, "peer", False, b"up"),
]
_NODE = Node("me", _ME, _CFG, rng=random.Random(1))
_NODE.start(0.0, [])
_NOW = [1.0]


def sealer_open(data: bytes) -> None:
    for sealer in (_STRICT, _LENIENT):
        with contextlib.suppress(SealError):
            sealer.open(data, _OTHER)


def framing_decoders(data: bytes) -> None:
    for decode in (framing.decode_request, framing.decode_response, framing.decode_datagram):
        with contextlib.suppress(framing.FrameError):
            decode(data)


def mux_messages(data: bytes) -> None:
    """A multiplexed connection's message (after the sealer): kind, stream id, payload."""
    with contextlib.suppress(framing.FrameError):
        kind, _, payload = muxframes.decode(data)
        decode = framing.decode_request if kind == muxframes.REQUEST else framing.decode_response
        decode(payload)


def wire_decoders(data: bytes) -> None:
    for codec in (_CODEC, _WIDE):
        with contextlib.suppress(WireError):
            codec.decode_packet(data)
        with contextlib.suppress(WireError):
            codec.decode_frame(data)


def node_inputs(data: bytes) -> None:
    """The live node's datagram and stream entry points (state carries over)."""
    _NOW[0] += 0.01
    before = _NODE.members()
    try:
        _CODEC.decode_packet(data)
        undecodable = False
    except WireError:
        undecodable = True
    _NODE.receive_datagram(_NOW[0], _OTHER, data)
    refused = [x for x in _NODE.take_outputs() if isinstance(x, o.DatagramRejected)]
    if undecodable and (len(refused) != 1 or _NODE.members() != before):
        raise AssertionError("an undecodable datagram was not refused once, or changed members")
    _NODE.handle_stream_request(_NOW[0], _OTHER, data)
    _NODE.handle_timeout(_NOW[0])
    _NODE.take_outputs()


async def _ok(request: ApiRequest) -> ApiResponse:
    return ApiResponse.json({"path": request.path})


_HTTP = HttpServer({("GET", "/v1/health"): _ok, ("POST", "/v1/join"): _ok}, token="t")


def http_request(data: bytes) -> None:
    """One connection to the control API's HTTP server: any bytes end in a
    well-formed answer or a close, and no exception leaves the handler."""

    reply, _ = replay_connection(_HTTP, data)
    if reply and not reply.startswith(b"HTTP/1.1 "):
        raise AssertionError(f"malformed answer {reply[:40]!r}")


def user_event_body(data: bytes) -> None:
    """A POST /v1/event or /v1/query body: any JSON value is parsed or refused
    with ApiError."""
    try:
        body = json.loads(data)
    except ValueError:
        return
    with contextlib.suppress(ApiError):
        parse_user_event(body)
    with contextlib.suppress(ApiError):
        parse_query(body)


def data_dir_files(data: bytes) -> None:
    """The files an agent reads from its data directory at start."""
    with contextlib.suppress(tagfile.TagChangeError):
        tagfile.decode(data)
    with contextlib.suppress(snapshot.SnapshotError):
        snapshot.decode(data)


_FILTER_MEMBERS = _NODE.members()


def member_filter(data: bytes) -> None:
    """GET /v1/members query parameters: `param=value` lines."""
    text = data.decode("utf-8", "replace")
    query = dict(line.partition("=")[::2] for line in text.split("\n")[:20])
    with contextlib.suppress(FilterError):
        parse_filter(query).select(_FILTER_MEMBERS)


def all_targets() -> list[tuple[str, Target]]:
    return [
        ("sealer_open", sealer_open),
        ("framing", framing_decoders),
        ("mux", mux_messages),
        ("wire", wire_decoders),
        ("node", node_inputs),
        ("http", http_request),
        ("data_dir_files", data_dir_files),
        ("member_filter", member_filter),
        ("user_event_body", user_event_body),
    ]


def seeds_for(index: int) -> list[bytes]:
    name = all_targets()[index][0]
    if name == "sealer_open":
        return [_PEER.seal(b""), _PEER.seal(b"\xa1ahello" * 10), b"\xa1plain"]
    if name == "framing":
        return [
            framing.encode_request("member", b"\x00body"),
            framing.encode_channel_datagram("keys", b"x"),
            framing.encode_response(framing.STATUS_OK, b"ok"),
        ]
    if name == "mux":
        return [
            muxframes.encode(muxframes.REQUEST, 1, framing.encode_request("kv", b"{}")),
            muxframes.encode(muxframes.RESPONSE, 2**32 - 1, framing.encode_response(0, b"ok")),
        ]
    if name == "user_event_body":
        return [
            b'{"name": "deploy", "payload": "v1"}',
            b'{"name": "x", "payload_base64": "AA=="}',
            b'{"name": "up", "node": "web-*", "tags": {"dc": "eu"}, "ack": false, "timeout": 2}',
        ]
    if name == "http":
        return [
            b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /v1/join?a=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n"
            b"Content-Length: 2\r\n\r\n{}",
            b"POST /v1/join HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        ]
    if name == "data_dir_files":
        return [
            tagfile.encode(tagfile.TagChange({"role": "db"}, frozenset({"zone"}))),
            snapshot.encode(_NODE.members(), "other"),
        ]
    if name == "member_filter":
        return [b"status=alive,failed\nname=me|peer.*\ntag.role=d(b|c)"]
    frames = [_CODEC.frame(m) for m in _MESSAGES]
    parts = [f[len(_CODEC.prefix) + 1 :] for f in frames]
    v2_ping = _WIDE.frame(Ping(7, "me"))
    return [*frames, v2_ping, _CODEC.packet(parts[:3]), _CODEC.packet(parts[2:])]
