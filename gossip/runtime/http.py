"""A small HTTP/1.1 server on h11 for the control API.

Rules: a connection is kept alive for up to MAX_REQUESTS_PER_CONNECTION
requests, answered one after the other in arrival order (pipelined requests
wait in h11's buffer); it is closed after IDLE_TIMEOUT seconds without a new
request, after a streamed answer, an error while reading, or when the client
asks (`Connection: close`, HTTP/1.0). The request head is bounded
(MAX_HEAD_BYTES), the body too (MAX_BODY_BYTES), and each request must arrive
whole within REQUEST_TIMEOUT seconds of its first byte, so slow or endless
clients are cut (slowloris-safe). At most MAX_CONNECTIONS are served at once;
more are closed at once. When a token is set, every route except
/v1/health needs `Authorization: Bearer <token>`. A route path ending in "*"
matches by prefix (exact routes first, then the longest prefix). Handlers raise
ApiError for clean 4xx answers; any other exception becomes a logged 500.
A long poll (a request the `long_poll` predicate names, e.g. a watch) is
cancelled as soon as its client closes the connection, so a watcher that went
away frees its place at once instead of when its wait ends; bytes the client
pipelines behind it meanwhile are kept for the next requests (up to one
request's bounds, after which reading waits for the answer).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import h11
import structlog
import trio

from gossip.hostport import format_hostport
from gossip.runtime.metrics import Counter
from gossip.runtime.network import open_stream_listeners, peer_host

MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 1024 * 1024
REQUEST_TIMEOUT = 10.0
IDLE_TIMEOUT = 5.0
"""How long a kept-alive connection may wait for its next request."""
MAX_REQUESTS_PER_CONNECTION = 1000
MAX_CONNECTIONS = 64
OPEN_ROUTES = frozenset({"/v1/health"})

log = structlog.get_logger("gossip.http")


class ApiError(Exception):
    """A clean client error: becomes `{"error": message}` with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ApiRequest:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    peer: str = ""

    def json(self) -> Any:
        """The body parsed as JSON (an empty body is `{}`); ApiError 400 if malformed."""
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"body is not valid JSON: {exc}") from None


@dataclass(frozen=True)
class ApiResponse:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    stream: AsyncIterator[bytes] | None = field(default=None, compare=False)
    """When set, sent as a chunked body after `body` until it ends or the client goes."""

    @classmethod
    def json(cls, obj: Any, status: int = 200) -> ApiResponse:
        return cls(status, json.dumps(obj, sort_keys=True).encode() + b"\n")

    @classmethod
    def text(cls, text: str, content_type: str = "text/plain; charset=utf-8") -> ApiResponse:
        return cls(200, text.encode(), content_type)


Handler = Callable[[ApiRequest], Awaitable[ApiResponse]]
RouteKey = tuple[str, str]
"""(METHOD, /path)"""


class HttpServer:
    def __init__(
        self,
        routes: Mapping[RouteKey, Handler],
        token: str | None = None,
        rejected: Counter | None = None,
        long_poll: Callable[[ApiRequest], bool] = lambda request: False,
    ) -> None:
        self.routes = routes
        self.token = token
        self._long_poll = long_poll
        self._active = 0
        self._rejected = rejected
        """Refused requests by reason: too_many, timeout, bad_request, unauthorized."""

    def _refuse(self, reason: str) -> None:
        if self._rejected is not None:
            self._rejected.inc(labels={"reason": reason})

    async def serve(
        self,
        host: str,
        port: int,
        *,
        task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        listeners = await open_stream_listeners((host, port))
        task_status.started(listeners)
        await trio.serve_listeners(self.handle, listeners)

    async def handle(self, stream: trio.abc.Stream) -> None:
        if self._active >= MAX_CONNECTIONS:
            self._refuse("too_many")
            await stream.aclose()
            return
        self._active += 1
        try:
            peer = _peer_of(stream)
            await self._serve_one(stream, peer)
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError):
            pass  # the client went away, or stopped reading our answer
        except h11.ProtocolError:
            pass  # answered (or not answerable) already
        except Exception:
            # A bug in one connection must not stop the API (or the agent).
            log.exception("api_connection_failed")
        finally:
            self._active -= 1
            with trio.move_on_after(1):
                await stream.aclose()

    async def _serve_one(self, stream: trio.abc.Stream, peer: str) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        for served in range(MAX_REQUESTS_PER_CONNECTION):
            if served and not await _await_next_request(conn, stream):
                return  # idle too long, or the client closed: no answer owed
            request: ApiRequest | None = None
            with trio.move_on_after(REQUEST_TIMEOUT):
                try:
                    request = await _read_request(conn, stream, peer)
                except ApiError as exc:
                    self._refuse("bad_request")
                    await _send_simple(conn, stream, exc.status, exc.message)
                    return
                except h11.RemoteProtocolError as exc:
                    self._refuse("bad_request")
                    await _send_simple(conn, stream, exc.error_status_hint, "bad request")
                    return
            if request is None:
                self._refuse("timeout")
                return  # too slow: cut without an answer
            response = await self._answer(conn, stream, request)
            if response is None:
                return  # the client hung up on a long poll: nobody to answer
            last = served + 1 == MAX_REQUESTS_PER_CONNECTION or response.stream is not None
            await _send_response(conn, stream, response, keep_alive=not last)
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return  # either side asked to close
            conn.start_next_cycle()

    async def _answer(
        self, conn: h11.Connection, stream: trio.abc.Stream, request: ApiRequest
    ) -> ApiResponse | None:
        """The handler's answer; None when the client hung up on a long poll first."""
        if not self._long_poll(request):
            return await self._dispatch(request)
        response: ApiResponse | None = None
        async with trio.open_nursery() as nursery:

            async def run() -> None:
                nonlocal response
                response = await self._dispatch(request)
                nursery.cancel_scope.cancel()

            nursery.start_soon(run)
            await _until_hangup(conn, stream)
            nursery.cancel_scope.cancel()
        return response

    async def _dispatch(self, request: ApiRequest) -> ApiResponse:
        if self.token is not None and request.path not in OPEN_ROUTES:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                self._refuse("unauthorized")
                return ApiResponse.json({"error": "missing or wrong API token"}, 401)
        handler = self.routes.get((request.method, request.path)) or _prefix_route(
            self.routes, request.method, request.path
        )
        if handler is None:
            if any(_matches(path, request.path) for _, path in self.routes):
                return ApiResponse.json({"error": "method not allowed"}, 405)
            return ApiResponse.json({"error": f"no such route: {request.path}"}, 404)
        try:
            return await handler(request)
        except ApiError as exc:
            return ApiResponse.json({"error": exc.message}, exc.status)
        except Exception:
            log.exception("api_handler_failed", path=request.path)
            return ApiResponse.json({"error": "internal error"}, 500)


def _matches(route: str, path: str) -> bool:
    """A route ending in "*" matches every path that starts with what precedes it."""
    return path.startswith(route[:-1]) if route.endswith("*") else route == path


def _prefix_route(routes: Mapping[RouteKey, Handler], method: str, path: str) -> Handler | None:
    """The longest prefix route ("/v1/kv/*") for `path`, if any."""
    best: tuple[int, Handler] | None = None
    for (m, route), handler in routes.items():
        hit = m == method and route.endswith("*") and _matches(route, path)
        if hit and (best is None or len(route) > best[0]):
            best = (len(route), handler)
    return None if best is None else best[1]


def _peer_of(stream: trio.abc.Stream) -> str:
    """HOST:PORT of a socket stream's peer; "" for other streams or a closed socket."""
    if not isinstance(stream, trio.SocketStream):
        return ""
    try:
        host, port = stream.socket.getpeername()[:2]
        return format_hostport(peer_host(str(host)), int(port))
    except (OSError, ValueError):
        return ""


async def _next_event(conn: h11.Connection, stream: trio.abc.Stream) -> Any:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        data = await stream.receive_some(16384)
        conn.receive_data(bytes(data))  # b"" marks end of input


async def _until_hangup(conn: h11.Connection, stream: trio.abc.Stream) -> None:
    """Return when the client closes or breaks its end; what it pipelines meanwhile
    goes to h11's buffer, up to one request's bounds (then only the answer ends this)."""
    buffered = 0
    while buffered <= MAX_HEAD_BYTES + MAX_BODY_BYTES:
        try:
            data = await stream.receive_some(16384)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        if not data:
            return
        conn.receive_data(bytes(data))
        buffered += len(data)
    await trio.sleep_forever()


async def _await_next_request(conn: h11.Connection, stream: trio.abc.Stream) -> bool:
    """Wait up to IDLE_TIMEOUT for the next request's first bytes; False if none came."""
    if conn.trailing_data[0]:
        return True  # pipelined: already here
    data = b""
    with trio.move_on_after(IDLE_TIMEOUT):
        data = bytes(await stream.receive_some(16384))
    if not data:
        return False
    conn.receive_data(data)
    return True


async def _read_request(conn: h11.Connection, stream: trio.abc.Stream, peer: str) -> ApiRequest:
    event = await _next_event(conn, stream)
    if not isinstance(event, h11.Request):
        raise ApiError(400, "expected a request")
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, "body too large")
    body = bytearray()
    while True:
        part = await _next_event(conn, stream)
        if isinstance(part, h11.Data):
            body += part.data
            if len(body) > MAX_BODY_BYTES:
                raise ApiError(413, "body too large")
        elif isinstance(part, h11.EndOfMessage):
            break
        else:
            raise ApiError(400, "incomplete request")
    try:
        target = urlsplit(event.target.decode("latin-1"))
        query = dict(parse_qsl(target.query, keep_blank_values=True, max_num_fields=64))
    except ValueError:  # e.g. "[::1" or more than 64 query fields
        raise ApiError(400, "bad request target") from None
    return ApiRequest(event.method.decode("ascii"), target.path, query, headers, bytes(body), peer)


def _head(status: int, content_type: str, length: int | None, keep_alive: bool) -> h11.Response:
    headers = [("content-type", content_type)]
    if not keep_alive:
        headers.append(("connection", "close"))
    if length is not None:
        headers.append(("content-length", str(length)))
    return h11.Response(status_code=status, headers=headers)


async def _send_simple(
    conn: h11.Connection, stream: trio.abc.Stream, status: int, msg: str
) -> None:
    if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
        return
    await _send_response(conn, stream, ApiResponse.json({"error": msg}, status))


async def _send(stream: trio.abc.Stream, data: bytes | None) -> None:
    """Write with a deadline, so a client that stops reading cannot hold a slot forever."""
    if data:
        with trio.fail_after(REQUEST_TIMEOUT):
            await stream.send_all(data)


async def _send_response(
    conn: h11.Connection, stream: trio.abc.Stream, resp: ApiResponse, *, keep_alive: bool = False
) -> None:
    length = None if resp.stream is not None else len(resp.body)
    head = conn.send(_head(resp.status, resp.content_type, length, keep_alive)) or b""
    body = conn.send(h11.Data(data=resp.body)) or b"" if resp.body else b""
    if resp.stream is None:  # one write: a small answer goes out in one segment
        await _send(stream, head + body + (conn.send(h11.EndOfMessage()) or b""))
        return
    await _send(stream, head + body)
    chunks = resp.stream
    try:
        async for chunk in chunks:
            await _send(stream, conn.send(h11.Data(data=chunk)))
    finally:
        closer = getattr(chunks, "aclose", None)
        if closer is not None:
            await closer()
    await _send(stream, conn.send(h11.EndOfMessage()))
