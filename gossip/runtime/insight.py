"""Why the agent sees what it sees: coordinates, reachability and `why`.

Routes (read-only; no request changes member state):
- GET /v1/coordinate[?node=NAME]: a network coordinate (ours by default).
- GET /v1/rtt?a=A[&b=B]: the estimated round trip between two members (B is
  this agent when left out), from their coordinates.
- GET /v1/nearest[?n=N]: the N members nearest this agent by estimate.
- GET /v1/reachability[?timeout=S]: ping every other live member directly,
  now, and list who answered within S seconds, with round trips.
- GET /v1/history?member=NAME: what this agent saw of a member.
- GET /v1/why?member=NAME: that history from every live member (asked over
  the "history" stream channel, at most WHY_TIMEOUT each, in parallel),
  merged into one story ordered by time.
Every query field is bounded and checked (400 naming it); coordinates off is
409 with the setting to turn on. One reachability check runs at a time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import trio

from gossip.core.membership.coordinates import Coordinates, nearest
from gossip.core.membership.node import Node
from gossip.core.membership.vivaldi import Coordinate, estimate_rtt
from gossip.core.types import MemberState
from gossip.runtime.history import MemberHistory, merge_story
from gossip.runtime.http import ApiError, ApiRequest, ApiResponse, Handler, RouteKey
from gossip.runtime.notify import fmt_address
from gossip.runtime.service import Service, ServiceHost, StreamError, StreamHandler

T = TypeVar("T")

HISTORY_CHANNEL = "history"
MAX_NAME_BYTES = 255
MAX_TIMEOUT_S = 10.0
DEFAULT_REACH_TIMEOUT_S = 1.0
WHY_TIMEOUT = 3.0
MAX_NEAREST = 1000
_LIVE = (MemberState.ALIVE, MemberState.SUSPECT)


class NodeCaller(Protocol):
    """What this service needs of the agent besides the ServiceHost."""

    async def call(self, fn: Callable[[Node, float], T]) -> T: ...


def coordinate_json(c: Coordinate) -> dict[str, Any]:
    return {
        "vec": [round(x, 9) for x in c.vec],
        "height": round(c.height, 9),
        "error": round(c.error, 6),
        "adjustment": round(c.adjustment, 9),
    }


class InsightService(Service):
    name = "insight"

    def __init__(self, node: NodeCaller, history: MemberHistory) -> None:
        self._node = node
        self.history = history
        self._reach_lock = trio.Lock()

    def attach(self, host: ServiceHost) -> None:
        self.host = host

    def routes(self) -> Mapping[RouteKey, Handler]:
        return {
            ("GET", "/v1/coordinate"): self._coordinate,
            ("GET", "/v1/rtt"): self._rtt,
            ("GET", "/v1/nearest"): self._nearest,
            ("GET", "/v1/reachability"): self._reachability,
            ("GET", "/v1/history"): self._history,
            ("GET", "/v1/why"): self._why,
        }

    def stream_channels(self) -> Mapping[str, StreamHandler]:
        return {HISTORY_CHANNEL: self._on_history_request}

    # ---- coordinates --------------------------------------------------------------

    async def _coordinates(self) -> Coordinates:
        coords = await self._node.call(lambda node, now: node.coordinates)
        if not coords.enabled:
            raise ApiError(409, "coordinates are off: set coordinates = true in [core]")
        return coords

    async def _coordinate(self, req: ApiRequest) -> ApiResponse:
        coords = await self._coordinates()
        name = _name(req.query.get("node", self.host.name), "node")
        c = coords.of(name)
        if c is None:
            raise ApiError(404, f"node: no coordinate known for {name!r}")
        body: dict[str, Any] = {"node": name, "coordinate": coordinate_json(c)}
        if name == self.host.name:
            body["samples"] = coords.samples
        return ApiResponse.json(body)

    async def _rtt(self, req: ApiRequest) -> ApiResponse:
        coords = await self._coordinates()
        a = _name(req.query.get("a", ""), "a")
        b = _name(req.query.get("b", self.host.name), "b")
        ca, cb = coords.of(a), coords.of(b)
        for name, c in ((a, ca), (b, cb)):
            if c is None:
                raise ApiError(404, f"no coordinate known for {name!r}")
        assert ca is not None and cb is not None
        return ApiResponse.json({"a": a, "b": b, "rtt_ms": round(estimate_rtt(ca, cb) * 1e3, 3)})

    async def _nearest(self, req: ApiRequest) -> ApiResponse:
        await self._coordinates()
        n = _bounded_int(req.query.get("n", "3"), "n", 1, MAX_NEAREST)
        found = await self._node.call(lambda node, now: nearest_live(node, n))
        rows = [{"node": name, "rtt_ms": round(s * 1e3, 3)} for name, s in found]
        return ApiResponse.json({"nearest": rows})

    # ---- reachability --------------------------------------------------------------------

    async def _reachability(self, req: ApiRequest) -> ApiResponse:
        timeout = _bounded_float(
            req.query.get("timeout", str(DEFAULT_REACH_TIMEOUT_S)), "timeout", 0.01, MAX_TIMEOUT_S
        )
        async with self._reach_lock:
            check = await self._node.call(lambda node, now: node.check_reachability(now, timeout))
            await trio.sleep(timeout)
            # Read in the core task, after the check's own timer (due by now) has fired.
            asked, answered = await self._node.call(
                lambda node, now: (dict(check.asked), dict(check.answered))
            )
        rows = [
            {
                "name": name,
                "address": fmt_address(address),
                "answered": name in answered,
                "rtt_ms": round(answered[name] * 1e3, 3) if name in answered else None,
            }
            for name, address in sorted(asked.items())
        ]
        return ApiResponse.json({"from": self.host.name, "timeout_s": timeout, "members": rows})

    # ---- history and why --------------------------------------------------------------------

    async def _history(self, req: ApiRequest) -> ApiResponse:
        member = _name(req.query.get("member", ""), "member")
        return ApiResponse.json({"member": member, "records": self.history.of(member)})

    async def _on_history_request(self, src: object, body: bytes) -> bytes | None:
        try:
            member = body.decode()
        except UnicodeDecodeError:
            return None
        if not member or len(body) > MAX_NAME_BYTES:
            return None
        return json.dumps(self.history.of(member)).encode()

    async def _why(self, req: ApiRequest) -> ApiResponse:
        member = _name(req.query.get("member", ""), "member")
        histories = [self.history.of(member)]
        observers: dict[str, str] = {self.host.name: "ok"}
        peers = [m for m in self.host.members() if m.name != self.host.name and m.state in _LIVE]

        async def ask(name: str, address: Any) -> None:
            try:
                with trio.fail_after(WHY_TIMEOUT):
                    reply = await self.host.request(address, HISTORY_CHANNEL, member.encode())
                records = _records(reply, name)
            except (StreamError, trio.TooSlowError, ValueError) as exc:
                observers[name] = f"no answer: {str(exc) or type(exc).__name__}"
                return
            histories.append(records)
            observers[name] = "ok"

        async with trio.open_nursery() as nursery:
            for peer in peers:
                nursery.start_soon(ask, peer.name, peer.address)
        story = merge_story(histories)
        return ApiResponse.json({"member": member, "observers": observers, "story": story})


def nearest_live(node: Node, n: int) -> list[tuple[str, float]]:
    """Up to n live members nearest `node` by estimated round trip, as
    (name, seconds), nearest first; empty while coordinates are off."""
    if not node.coordinates.enabled:
        return []
    live = [m.name for m in node.members() if m.state in _LIVE]
    return nearest(node.coordinates.of, node.name, live, n)


def _records(reply: bytes | None, observer: str) -> list[dict[str, Any]]:
    """A peer's history reply, checked: a JSON list of objects from that observer."""
    if reply is None:
        raise ValueError("no history")
    records = json.loads(reply)
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ValueError("malformed history")
    for r in records:
        if r.get("observer") != observer or not isinstance(r.get("time_ms"), int):
            raise ValueError("malformed history record")
    return records


def _name(value: str, field: str) -> str:
    if not value or len(value.encode()) > MAX_NAME_BYTES:
        raise ApiError(400, f"{field}: expected a member name (1..{MAX_NAME_BYTES} bytes)")
    return value


def _bounded_int(value: str, field: str, low: int, high: int) -> int:
    try:
        n = int(value)
    except ValueError:
        n = low - 1
    if not low <= n <= high:
        raise ApiError(400, f"{field}: expected an integer {low}..{high}")
    return n


def _bounded_float(value: str, field: str, low: float, high: float) -> float:
    try:
        x = float(value)
    except ValueError:
        x = math.nan
    if not low <= x <= high:
        raise ApiError(400, f"{field}: expected seconds {low}..{high}")
    return x
