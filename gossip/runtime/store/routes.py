"""HTTP routes of the replicated store on the control API.

Rules: keys are the rest of the path after /v1/kv/, percent-decoded (UTF-8);
values are the raw request body, at most 1 MiB (kvrecord.MAX_VALUE_BYTES;
the API also caps bodies at 1 MiB). `?consistency=one|quorum|all` (default
quorum). Not enough replicas answering (or reachable: a minority side) is a
503 whose body says how many did and how many were needed; when replicas
refused because their disk is full it is a 507, for other storage errors a 500,
each naming the reason. A write that replicas keep hiding behind a newer
version is a 409 that says so.
A node whose store clock disagrees with its peers refuses writes with a 503
that says so.
  PUT    /v1/kv/KEY          body = value     -> {"key", "version"}
  PUT    /v1/kv/KEY?ephemeral=1  the same, deleted when this agent fails or leaves (ephemeral.py)
  GET    /v1/kv/KEY          -> the value bytes (application/octet-stream); 404 if absent
  GET    /v1/kv/KEY?local=1  -> this node's own record as JSON (tombstones too), no quorum
  DELETE /v1/kv/KEY          -> {"key", "deleted": true, "version"}
  PUT or DELETE ...?after=VERSION  stamped above VERSION, the greatest version the client has
         seen (its session: core/store/session.py); 400 if it is not a version
  GET    /v1/kv?prefix=P&limit=N -> {"keys": [{"key", "size", "version"}], "truncated"}
  GET    /v1/kv/KEY?watch=VERSION&wait=S -> long poll (watch.py): the record as JSON with
         "changed", once its version differs from VERSION ("none": absent), or after S seconds
  GET    /v1/kv?prefix=P&watch=INDEX&wait=S -> long poll: the listing with its "index" and
         "changed", once the index differs from INDEX (any other text: answer now)
  GET    /v1/kv-digest       -> per-partition Merkle roots and counts on this node
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol
from urllib.parse import unquote

from gossip.core.store.hlc import Timestamp
from gossip.core.store.record import MAX_KEY_BYTES, Record, RecordError
from gossip.core.store.replica_ops import Listed
from gossip.core.store.session import SessionError, parse_version
from gossip.runtime.http import ApiError, ApiRequest, ApiResponse, Handler, RouteKey
from gossip.runtime.store.coordinator import NotEnoughReplicas, WriteHidden, parse_consistency
from gossip.runtime.store.ephemeral import hide_internal
from gossip.runtime.store.storeclock import ClockDisagrees
from gossip.runtime.store.watch import ABSENT, WatchGate, parse_wait, prefix_index, wait_for_change

PREFIX = "/v1/kv/"
MAX_LIST = 10_000


class RoutedStore(Protocol):
    """What the routes need of the store service (its library API)."""

    async def put(
        self, key: str, value: bytes, consistency: str, after: Timestamp | None = None
    ) -> Record: ...
    async def put_ephemeral(
        self, key: str, value: bytes, consistency: str, after: Timestamp | None = None
    ) -> Record: ...
    async def delete(
        self, key: str, consistency: str, after: Timestamp | None = None
    ) -> Record: ...
    async def get(self, key: str, consistency: str) -> bytes | None: ...
    async def get_record(self, key: str, consistency: str) -> Record | None: ...
    def get_local(self, key: str) -> Record | None: ...
    def digest(self) -> dict[str, Any]: ...
    async def list(self, prefix: str, limit: int) -> tuple[list[Listed], bool]: ...


def version_text(ts: Timestamp) -> str:
    """wall_ms.counter@node: sorts like the version within one node's writes."""
    return f"{ts.wall}.{ts.counter}@{ts.node}"


def record_json(r: Record) -> dict[str, Any]:
    return {
        "key": r.key,
        "deleted": r.deleted,
        "value_b64": None if r.value is None else base64.b64encode(r.value).decode(),
        "version": version_text(r.version),
        "wall_ms": r.version.wall,
    }


def watched_version(r: Record | None) -> str:
    return ABSENT if r is None else version_text(r.version)


def _key(req: ApiRequest) -> str:
    try:
        key = unquote(req.path[len(PREFIX) :], errors="strict")
    except UnicodeDecodeError:
        raise ApiError(400, "key is not valid UTF-8") from None
    if not key:
        raise ApiError(400, "missing key: use /v1/kv/KEY")
    return key


def _consistency(req: ApiRequest) -> str:
    try:
        return parse_consistency(req.query.get("consistency"))
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


def _after(req: ApiRequest) -> Timestamp | None:
    """The client's session version (`after=WALL_MS.COUNTER@NODE`), if it passed one."""
    text = req.query.get("after")
    if not text:
        return None
    try:
        return parse_version(text)
    except SessionError as exc:
        raise ApiError(400, f"after: {exc}") from None


_STATUS: dict[str | None, int] = {"no_space": 507, "io_error": 500}
Work = Callable[[ApiRequest], Awaitable[ApiResponse]]


def _guarded(work: Work) -> Handler:
    """Map the store's errors to clean HTTP answers."""

    async def handler(req: ApiRequest) -> ApiResponse:
        try:
            return await work(req)
        except NotEnoughReplicas as exc:
            body = {
                "error": str(exc),
                "acks": exc.acks,
                "needed": exc.needed,
                "replicas": exc.replicas,
                "reachable": exc.reachable,
                "reasons": exc.reasons,
            }
            return ApiResponse.json(body, _STATUS.get(exc.storage_reason, 503))
        except RecordError as exc:
            raise ApiError(400, str(exc)) from None
        except WriteHidden as exc:
            return ApiResponse.json({"error": str(exc), "newer": list(exc.newer)}, 409)
        except ClockDisagrees as exc:
            return ApiResponse.json({"error": str(exc)}, 503)

    return handler


def store_routes(svc: RoutedStore, gate: WatchGate | None = None) -> Mapping[RouteKey, Handler]:
    watches = gate or WatchGate()

    async def visible(prefix: str, limit: int) -> tuple[list[Listed], bool]:
        """The listing without the ephemeral index, unless that is what was asked for."""
        records, truncated = await svc.list(prefix, limit)
        return hide_internal(prefix, records), truncated

    async def watch_key(req: ApiRequest, key: str, seen: str) -> ApiResponse:
        consistency, wait = _consistency(req), parse_wait(req.query.get("wait"))
        with watches.admit():
            record, changed = await wait_for_change(
                lambda: svc.get_record(key, consistency), watched_version, seen, wait
            )
        if record is None:
            body: dict[str, Any] = {"key": key, "deleted": True, "value_b64": None}
            body |= {"version": ABSENT, "changed": changed}
            return ApiResponse.json(body)
        return ApiResponse.json(record_json(record) | {"changed": changed})

    async def watch_prefix(req: ApiRequest, prefix: str, limit: int, seen: str) -> ApiResponse:
        wait = parse_wait(req.query.get("wait"))

        def index(listing: tuple[list[Listed], bool]) -> str:
            return prefix_index(listing[0])

        with watches.admit():
            (records, truncated), changed = await wait_for_change(
                lambda: visible(prefix, limit), index, seen, wait
            )
        keys = [{"key": i.key, "size": i.size, "version": version_text(i.version)} for i in records]
        body = {"keys": keys, "truncated": truncated, "changed": changed}
        return ApiResponse.json(body | {"index": index((records, truncated))})

    async def put(req: ApiRequest) -> ApiResponse:
        write = svc.put_ephemeral if req.query.get("ephemeral") in ("1", "true") else svc.put
        r = await write(_key(req), req.body, _consistency(req), _after(req))
        return ApiResponse.json({"key": r.key, "version": version_text(r.version)})

    async def get(req: ApiRequest) -> ApiResponse:
        key = _key(req)
        if req.query.get("local") in ("1", "true", "yes"):
            local = svc.get_local(key)
            if local is None:
                raise ApiError(404, f"no such key on this node: {key}")
            return ApiResponse.json(record_json(local))
        if "watch" in req.query:
            return await watch_key(req, key, req.query["watch"])
        value = await svc.get(key, _consistency(req))
        if value is None:
            raise ApiError(404, f"no such key: {key}")
        return ApiResponse(200, value, "application/octet-stream")

    async def delete(req: ApiRequest) -> ApiResponse:
        r = await svc.delete(_key(req), _consistency(req), _after(req))
        return ApiResponse.json({"key": r.key, "deleted": True, "version": version_text(r.version)})

    async def listing(req: ApiRequest) -> ApiResponse:
        raw = req.query.get("limit", "1000")
        if not raw.isdigit() or not 0 < int(raw) <= MAX_LIST:
            raise ApiError(400, f"limit must be 1..{MAX_LIST}")
        prefix = req.query.get("prefix", "")
        if len(prefix.encode()) > MAX_KEY_BYTES:
            raise ApiError(400, f"prefix longer than {MAX_KEY_BYTES} bytes")
        if "watch" in req.query:
            return await watch_prefix(req, prefix, int(raw), req.query["watch"])
        records, truncated = await visible(prefix, int(raw))
        keys = [{"key": i.key, "size": i.size, "version": version_text(i.version)} for i in records]
        return ApiResponse.json({"keys": keys, "truncated": truncated})

    async def digest(req: ApiRequest) -> ApiResponse:
        return ApiResponse.json(svc.digest())

    return {
        ("PUT", PREFIX + "*"): _guarded(put),
        ("GET", PREFIX + "*"): _guarded(get),
        ("DELETE", PREFIX + "*"): _guarded(delete),
        ("GET", "/v1/kv"): _guarded(listing),
        ("GET", "/v1/kv-digest"): digest,
    }
