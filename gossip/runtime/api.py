"""The agent's control API routes (JSON over the h11 server in http.py).

Rules: handlers validate every field of a request body and answer 400 with a
message naming the field; they change the Node only through the agent's commands,
and see the agent only as `ControlledAgent`, the part of it they use.
The events feed ends when the agent stops or the subscriber falls behind, and
sends a heartbeat line every HEARTBEAT_S so dead clients are noticed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol

import trio

from gossip.core.types import MemberInfo
from gossip.runtime.http import ApiError, ApiRequest, ApiResponse, Handler, RouteKey
from gossip.runtime.memberfilter import FilterError, parse_filter
from gossip.runtime.metrics import Registry
from gossip.runtime.notify import fmt_address
from gossip.runtime.seeds import parse_seed
from gossip.runtime.subscribe import Subscription
from gossip.runtime.tagfile import TagChange, tag_change

HEARTBEAT_S = 10.0
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


def member_json(m: MemberInfo) -> dict[str, Any]:
    return {
        "name": m.name,
        "address": fmt_address(m.address),
        "state": m.state.label,
        "incarnation": m.incarnation,
        "tags": dict(m.tags),
    }


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
        ("POST", "/v1/tags"): tags,
        ("POST", "/v1/force-leave"): force_leave,
    }


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
