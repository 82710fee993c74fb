"""The agent's control API: its routes, served as JSON over the h11 server in http.py.

Rules: handlers validate every field of a request body and answer 400 with a
message naming the field; they change the Node only through the agent's commands,
and see the agent only as `ControlledAgent`, the part of it they use.
The events feed ends when the agent stops or the subscriber falls behind, and
sends a heartbeat line every HEARTBEAT_S so dead clients are noticed.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from gossip.core.membership.queries import MAX_FILTER_CHARS, filter_matches
from gossip.core.membership.wireschema import MAX_RELAY
from gossip.core.types import Address, MemberInfo
from gossip.runtime.hosted import add_unique
from gossip.runtime.http import ApiError, ApiRequest, ApiResponse, Handler, HttpServer, RouteKey
from gossip.runtime.memberfilter import FilterError, parse_filter
from gossip.runtime.metrics import Registry
from gossip.runtime.notify import fmt_address, payload_json
from gossip.runtime.queries import MAX_TIMEOUT_S, QueryRefused, QueryStream
from gossip.runtime.seeds import parse_seed
from gossip.runtime.subscribe import Subscription
from gossip.runtime.tagfile import TagChange, tag_change

HEARTBEAT_S = 10.0
MAX_QUERY_TAGS = 16
MAX_JOIN_ADDRESSES = 64
MAX_NAME_CHARS = 255


class ControlledAgent(Protocol):
    """What the control API needs of the agent."""

    @property
    def name(self) -> str: ...
    @property
    def node_id(self) -> str: ...
    @property
    def health(self) -> int: ...
    @property
    def protocol_version(self) -> int: ...
    @property
    def leaving(self) -> bool: ...
    @property
    def joined(self) -> trio.Event: ...
    @property
    def metrics(self) -> Registry: ...
    @property
    def nursery(self) -> trio.Nursery | None: ...

    def members(self) -> list[MemberInfo]: ...
    def self_info(self) -> MemberInfo | None: ...
    def subscribe(self, maxsize: int = ...) -> Subscription: ...
    async def join(self, seeds: Sequence[str]) -> int: ...
    async def set_tags(self, tags: Mapping[str, str]) -> None: ...
    async def update_tags(self, change: TagChange) -> dict[str, str]: ...
    async def force_leave(self, name: str, *, prune: bool = False) -> None: ...
    async def leave_and_stop(self) -> None: ...
    async def event(self, name: str, payload: bytes = ..., coalesce: bool = ...) -> None: ...
    async def start_query(
        self,
        name: str,
        payload: bytes = ...,
        *,
        node: str = ...,
        tags: Mapping[str, str] | None = ...,
        ack: bool = ...,
        wait_s: float = ...,
        relay: int = ...,
    ) -> QueryStream: ...


def member_json(m: MemberInfo) -> dict[str, Any]:
    return {
        "name": m.name,
        "address": fmt_address(m.address),
        "state": m.state.label,
        "incarnation": m.incarnation,
        "tags": dict(m.tags),
    }


async def serve_api(
    nursery: trio.Nursery,
    agent: ControlledAgent,
    bind: Address,
    routes: Mapping[RouteKey, Handler],
    token: str | None,
) -> Address:
    """Serve the control routes and the services' `routes` on `bind` (a route
    registered twice is refused); the address the server listens on."""
    table = dict(control_routes(agent))
    for key, handler in routes.items():
        add_unique(table, key, handler, f"route {key}")
    rejected = agent.metrics.counter(
        "http_rejected_total", "Control API requests refused, by reason.", ("reason",)
    )
    # A watch is a long poll: cancelled when its client hangs up (docs/store.md, Watches).
    server = HttpServer(
        table, token=token, rejected=rejected, long_poll=lambda r: "watch" in r.query
    )
    listeners = await nursery.start(server.serve, bind[0], bind[1])
    host, port = listeners[0].socket.getsockname()[:2]
    return str(host), int(port)


def control_routes(agent: ControlledAgent) -> dict[RouteKey, Handler]:
    async def health(_: ApiRequest) -> ApiResponse:
        alive = sum(1 for m in agent.members() if m.state.label == "alive")
        status = "leaving" if agent.leaving else "ok"
        return ApiResponse.json({"status": status, "health": agent.health, "members_alive": alive})

    async def self_(_: ApiRequest) -> ApiResponse:
        me = agent.self_info()
        body: dict[str, Any] = member_json(me) if me is not None else {"name": agent.name}
        body.update(node_id=agent.node_id, health=agent.health, joined=agent.joined.is_set())
        body["protocol_version"] = agent.protocol_version
        return ApiResponse.json(body)

    async def members(req: ApiRequest) -> ApiResponse:
        try:
            chosen = parse_filter(req.query).select(agent.members())
        except FilterError as exc:
            raise ApiError(400, str(exc)) from None
        listed = sorted(chosen, key=lambda m: m.name)
        return ApiResponse.json({"members": [member_json(m) for m in listed]})

    async def metrics(_: ApiRequest) -> ApiResponse:
        return ApiResponse.text(agent.metrics.render(), "text/plain; version=0.0.4")

    async def join(req: ApiRequest) -> ApiResponse:
        body = req.json()
        addresses = body.get("addresses") if isinstance(body, dict) else None
        if (
            not isinstance(addresses, list)
            or not 0 < len(addresses) <= MAX_JOIN_ADDRESSES
            or not all(isinstance(a, str) for a in addresses)
        ):
            raise ApiError(400, 'addresses: expected a list of "HOST:PORT" or "srv:NAME" strings')
        for a in addresses:
            try:
                parse_seed(a)
            except ValueError as exc:
                raise ApiError(400, f"addresses: {exc}") from None
        resolved = await agent.join(addresses)
        return ApiResponse.json({"resolved": resolved, "requested": len(addresses)})

    async def leave(_: ApiRequest) -> ApiResponse:
        assert agent.nursery is not None
        agent.nursery.start_soon(agent.leave_and_stop)
        return ApiResponse.json({"status": "leaving"})

    async def tags(req: ApiRequest) -> ApiResponse:
        body = req.json()
        if isinstance(body, dict) and ("set" in body or "delete" in body):
            return await _change_tags(agent, body)
        given = body.get("tags") if isinstance(body, dict) else None
        if not isinstance(given, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in given.items()
        ):
            raise ApiError(400, "tags: expected an object of string values")
        try:
            await agent.set_tags(given)
        except ValueError as exc:
            raise ApiError(400, f"tags: {exc}") from None
        return ApiResponse.json({"tags": given})

    async def event(req: ApiRequest) -> ApiResponse:
        name, payload, coalesce = parse_user_event(req.json())
        try:
            await agent.event(name, payload, coalesce)
        except ValueError as exc:
            raise ApiError(413, f"payload: {exc}") from None
        return ApiResponse.json({"name": name, "size": len(payload), "coalesce": coalesce})

    async def query(req: ApiRequest) -> ApiResponse:
        q = parse_query(req.json())
        try:
            stream = await agent.start_query(
                q.name,
                q.payload,
                node=q.node,
                tags=q.tags,
                ack=q.ack,
                wait_s=q.timeout,
                relay=q.relay,
            )
        except QueryRefused as exc:  # over this agent's bounds: a later try may pass
            raise ApiError(429, f"query refused: {exc}") from None
        except ValueError as exc:
            raise ApiError(400, f"query: {exc}") from None
        expected = sorted(
            m.name
            for m in agent.members()
            if m.state.label == "alive" and filter_matches(q.node, q.tags, m.name, m.tags)
        )
        return ApiResponse(200, b"", "application/x-ndjson", _query_lines(stream, expected, q.ack))

    async def force_leave(req: ApiRequest) -> ApiResponse:
        body = req.json()
        name = body.get("name") if isinstance(body, dict) else None
        prune = body.get("prune", False) if isinstance(body, dict) else False
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_CHARS:
            raise ApiError(400, f"name: expected a member name of 1..{MAX_NAME_CHARS} characters")
        if not isinstance(prune, bool):
            raise ApiError(400, "prune: expected true or false")
        try:
            await agent.force_leave(name, prune=prune)
        except ValueError as exc:
            raise ApiError(409, f"name: {exc}") from None
        return ApiResponse.json({"name": name, "state": "pruned" if prune else "left"})

    async def events(_: ApiRequest) -> ApiResponse:
        return ApiResponse(200, b"", "application/x-ndjson", _event_lines(agent))

    return {
        ("GET", "/v1/health"): health,
        ("GET", "/v1/self"): self_,
        ("GET", "/v1/members"): members,
        ("GET", "/v1/metrics"): metrics,
        ("GET", "/v1/events"): events,
        ("POST", "/v1/join"): join,
        ("POST", "/v1/leave"): leave,
        ("POST", "/v1/event"): event,
        ("POST", "/v1/query"): query,
        ("POST", "/v1/tags"): tags,
        ("POST", "/v1/force-leave"): force_leave,
    }


def parse_user_event(body: Any) -> tuple[str, bytes, bool]:
    """The (name, payload, coalesce) of a POST /v1/event body: {"name": str,
    "payload": str (UTF-8) or "payload_base64": str, "coalesce": bool}."""
    if not isinstance(body, dict):
        raise ApiError(400, "expected a JSON object")
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise ApiError(400, "name: expected a non-empty string")
    coalesce = body.get("coalesce", True)
    if not isinstance(coalesce, bool):
        raise ApiError(400, "coalesce: expected true or false")
    text, encoded = body.get("payload", ""), body.get("payload_base64")
    if encoded is not None:
        try:
            return name, base64.b64decode(str(encoded), validate=True), coalesce
        except (binascii.Error, ValueError):
            raise ApiError(400, "payload_base64: not base64") from None
    if not isinstance(text, str):
        raise ApiError(400, "payload: expected a string")
    return name, text.encode(), coalesce


@dataclass(frozen=True)
class QueryRequest:
    name: str
    payload: bytes
    node: str
    tags: dict[str, str]
    ack: bool
    timeout: float
    relay: int = 0


def parse_query(body: Any) -> QueryRequest:
    """A POST /v1/query body: the fields of an event body (no coalesce) plus
    "node" (a glob), "tags" ({key: glob}), "ack" (bool), "timeout" (seconds),
    "relay" (members each reply also goes through, 0..MAX_RELAY)."""
    name, payload, _ = parse_user_event({k: v for k, v in body.items() if k != "coalesce"}
                                        if isinstance(body, dict) else body)  # fmt: skip
    node = body.get("node", "*")
    if not isinstance(node, str) or len(node) > MAX_FILTER_CHARS:
        raise ApiError(400, f"node: expected a glob of at most {MAX_FILTER_CHARS} characters")
    tags = body.get("tags", {})
    if (
        not isinstance(tags, dict)
        or len(tags) > MAX_QUERY_TAGS
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items())
        or any(len(v) > MAX_FILTER_CHARS or len(k) > MAX_FILTER_CHARS for k, v in tags.items())
    ):
        raise ApiError(400, "tags: expected an object of short glob strings")
    ack = body.get("ack", True)
    if not isinstance(ack, bool):
        raise ApiError(400, "ack: expected true or false")
    timeout = body.get("timeout", 5.0)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout <= MAX_TIMEOUT_S
    ):
        raise ApiError(400, f"timeout: expected seconds in (0, {MAX_TIMEOUT_S:g}]")
    relay = body.get("relay", 0)
    if isinstance(relay, bool) or not isinstance(relay, int) or not 0 <= relay <= MAX_RELAY:
        raise ApiError(400, f"relay: expected a whole number of members in 0..{MAX_RELAY}")
    return QueryRequest(name, payload, node, tags, ack, float(timeout), relay)


async def _query_lines(stream: QueryStream, expected: list[str], ack: bool) -> AsyncIterator[bytes]:
    """The query's id and who should answer, each ack and answer as it comes,
    then who acked, who answered and who did not before the deadline."""
    acked: list[str] = []
    answered: list[str] = []
    try:
        head = {"event": "query", "qid": stream.qid, "expected": expected}
        yield json.dumps(head).encode() + b"\n"
        while (answer := await stream.next()) is not None:
            if answer.ack:
                acked.append(answer.responder)
                line: dict[str, Any] = {"event": "ack", "from": answer.responder}
            else:
                answered.append(answer.responder)
                line = {"event": "response", "from": answer.responder}
                line.update(payload_json(answer.payload))
            yield json.dumps(line).encode() + b"\n"
    finally:
        stream.close()
    done = {
        "event": "done",
        "acks": sorted(acked),
        "responses": sorted(answered),
        "no_ack": sorted(set(expected) - set(acked)) if ack else [],
        "no_response": sorted(set(expected) - set(answered)),
    }
    yield json.dumps(done).encode() + b"\n"


async def _change_tags(agent: ControlledAgent, body: dict[str, Any]) -> ApiResponse:
    """{"set": {KEY: VALUE}, "delete": [KEY]}: a live change, kept across restarts."""
    try:
        change = tag_change(body.get("set"), body.get("delete"))
        tags = await agent.update_tags(change)
    except ValueError as exc:  # TagChangeError, or the core's limit on encoded tags
        raise ApiError(400, f"tags: {exc}") from None
    except OSError as exc:
        raise ApiError(500, f"tags: applied, but not recorded for restarts: {exc}") from None
    return ApiResponse.json({"tags": tags})


async def _event_lines(agent: ControlledAgent) -> AsyncIterator[bytes]:
    async with agent.subscribe() as sub:
        yield json.dumps({"event": "subscribed", "node": agent.name}).encode() + b"\n"
        while True:
            event = None
            with trio.move_on_after(HEARTBEAT_S):
                try:
                    event = await sub.__anext__()
                except StopAsyncIteration:
                    return  # the agent stopped or we fell behind
            if event is None:
                yield b'{"event": "heartbeat"}\n'
                continue
            line = event.to_json()
            line["node"] = agent.name
            yield json.dumps(line).encode() + b"\n"
