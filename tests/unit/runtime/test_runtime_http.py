"""The control API's HTTP server: routing, tokens, and limits on hostile clients."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import trio
import trio.testing

from gossip.runtime import http
from gossip.runtime.http import ApiError, ApiRequest, ApiResponse, HttpServer


async def _echo(req: ApiRequest) -> ApiResponse:
    body = req.json()
    if body.get("fail"):
        raise ApiError(422, "asked to fail")
    return ApiResponse.json({"query": dict(req.query), "body": body})


async def _boom(req: ApiRequest) -> ApiResponse:
    raise RuntimeError("bug")


ROUTES = {("POST", "/v1/echo"): _echo, ("GET", "/v1/boom"): _boom}


async def _exchange(server: HttpServer, raw: bytes) -> tuple[int, bytes]:
    client, srv = trio.testing.memory_stream_pair()
    data = b""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.handle, srv)
        await client.send_all(raw)
        await client.send_eof()  # one request: the server closes after it, not after its idle time
        while chunk := await client.receive_some(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _post(path: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


async def test_a_route_gets_its_query_and_json_body() -> None:
    status, body = await _exchange(HttpServer(ROUTES), _post("/v1/echo?a=1", b'{"x": 2}'))
    assert status == 200
    assert json.loads(body) == {"query": {"a": "1"}, "body": {"x": 2}}


async def test_unknown_paths_wrong_methods_and_bad_json_get_clean_errors() -> None:
    server = HttpServer(ROUTES)
    assert (await _exchange(server, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"))[0] == 404
    assert (await _exchange(server, b"GET /v1/echo HTTP/1.1\r\nHost: x\r\n\r\n"))[0] == 405
    assert (await _exchange(server, _post("/v1/echo", b"{oops")))[0] == 400
    assert (await _exchange(server, _post("/v1/echo", b'{"fail": 1}')))[0] == 422


async def test_a_failing_handler_is_a_500_and_the_server_carries_on() -> None:
    server = HttpServer(ROUTES)
    assert (await _exchange(server, b"GET /v1/boom HTTP/1.1\r\nHost: x\r\n\r\n"))[0] == 500
    assert (await _exchange(server, _post("/v1/echo", b"{}")))[0] == 200


async def test_a_token_is_required_except_for_health() -> None:
    async def ok(req: ApiRequest) -> ApiResponse:
        return ApiResponse.json({})

    server = HttpServer({**ROUTES, ("GET", "/v1/health"): ok}, token="s3cret")
    assert (await _exchange(server, _post("/v1/echo", b"{}")))[0] == 401
    bad = _post("/v1/echo", b"{}", "Authorization: Bearer nope\r\n")
    assert (await _exchange(server, bad))[0] == 401
    good = _post("/v1/echo", b"{}", "Authorization: Bearer s3cret\r\n")
    assert (await _exchange(server, good))[0] == 200
    assert (await _exchange(server, b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"))[0] == 200


async def test_oversized_bodies_and_heads_are_refused() -> None:
    server = HttpServer(ROUTES)
    head = f"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: {http.MAX_BODY_BYTES + 1}\r\n\r\n"
    assert (await _exchange(server, head.encode()))[0] == 413
    huge = b"GET / HTTP/1.1\r\nX: " + b"a" * (http.MAX_HEAD_BYTES * 2) + b"\r\n\r\n"
    assert (await _exchange(server, huge))[0] == 431


async def test_a_slow_client_is_cut_after_the_request_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    client, srv = trio.testing.memory_stream_pair()
    server = HttpServer(ROUTES)
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.handle, srv)
        await client.send_all(b"GET /v1/echo HTTP/1.1\r\n")  # and then nothing more
        assert await client.receive_some(100) == b""  # closed without an answer
    elapsed = trio.current_time() - start
    assert http.REQUEST_TIMEOUT <= elapsed < http.REQUEST_TIMEOUT + 2


async def test_a_client_that_stops_reading_is_cut_after_the_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"x" * 1024

    async def feed(req: ApiRequest) -> ApiResponse:
        return ApiResponse(200, b"", "text/plain", endless())

    client, srv = trio.testing.lockstep_stream_pair()  # no buffering: writes wait for reads
    server = HttpServer({("GET", "/feed"): feed})
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.handle, srv)
        await client.send_all(b"GET /feed HTTP/1.1\r\nHost: x\r\n\r\n")
        await trio.sleep(0.1)
        assert server._active == 1
        await trio.sleep(2 * http.REQUEST_TIMEOUT)  # never read the answer
        cut = server._active == 0
        nursery.cancel_scope.cancel()
    assert cut, "the connection of a client that stopped reading was not cut"


class _Waiter:
    """A long-poll route that answers when `release` is set; records its cancellation."""

    def __init__(self) -> None:
        self.release = trio.Event()
        self.cancelled = trio.Event()

    async def handle(self, req: ApiRequest) -> ApiResponse:
        try:
            await self.release.wait()
        except trio.Cancelled:
            self.cancelled.set()
            raise
        return ApiResponse.json({"waited": req.query.get("watch")})


def _long_poll_server(waiter: _Waiter) -> HttpServer:
    routes = {("GET", "/v1/wait"): waiter.handle, **ROUTES}
    return HttpServer(routes, long_poll=lambda r: "watch" in r.query)


async def test_a_long_poll_is_cancelled_when_its_client_hangs_up() -> None:
    waiter = _Waiter()
    client, srv = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_long_poll_server(waiter).handle, srv)
        await client.send_all(b"GET /v1/wait?watch=7 HTTP/1.1\r\nHost: x\r\n\r\n")
        await trio.testing.wait_all_tasks_blocked()
        assert not waiter.cancelled.is_set()
        await client.aclose()
        await trio.testing.wait_all_tasks_blocked()
        assert waiter.cancelled.is_set()
        nursery.cancel_scope.cancel()  # only needed when the hang-up went unseen


async def test_requests_pipelined_behind_a_long_poll_are_answered_after_it() -> None:
    waiter = _Waiter()
    client, srv = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_long_poll_server(waiter).handle, srv)
        await client.send_all(
            b"GET /v1/wait?watch=7 HTTP/1.1\r\nHost: x\r\n\r\n"
            + _post("/v1/echo", b'{"x": 1}', "Connection: close\r\n")
        )
        await trio.testing.wait_all_tasks_blocked()
        waiter.release.set()
        data = b""
        while chunk := await client.receive_some(65536):
            data += chunk
    assert not waiter.cancelled.is_set()
    assert data.count(b"HTTP/1.1 200") == 2
    assert data.index(b'"waited": "7"') < data.index(b'"body": {"x": 1}')


async def test_an_ordinary_request_is_answered_even_if_its_client_half_closes() -> None:
    waiter = _Waiter()
    status, body = await _exchange(_long_poll_server(waiter), _post("/v1/echo", b'{"x": 1}'))
    assert status == 200 and json.loads(body)["body"] == {"x": 1}
