"""The control API keeps a connection for several requests, answers pipelined
requests in order, and still cuts idle, slow and over-long connections."""

from __future__ import annotations

from gossip.runtime.http import (
    IDLE_TIMEOUT,
    MAX_REQUESTS_PER_CONNECTION,
    ApiRequest,
    ApiResponse,
    HttpServer,
)
from gossip.testing.httpreplay import replay_connection


async def _echo(request: ApiRequest) -> ApiResponse:
    return ApiResponse.json({"path": request.path})


SERVER_ROUTES = {("GET", "/a"): _echo, ("GET", "/b"): _echo}


def _get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()


def test_pipelined_requests_are_answered_in_order_on_one_connection() -> None:
    reply, _ = replay_connection(HttpServer(SERVER_ROUTES), _get("/a") + _get("/b") + _get("/a"))
    answers = reply.split(b"HTTP/1.1 200")[1:]
    assert len(answers) == 3
    assert [b'"/a"' in answers[0], b'"/b"' in answers[1], b'"/a"' in answers[2]] == [True] * 3
    assert b"connection: close" not in answers[0].lower()


def test_a_client_asking_to_close_gets_one_answer_then_the_close() -> None:
    data = _get("/a", "Connection: close\r\n") + _get("/b")
    reply, _ = replay_connection(HttpServer(SERVER_ROUTES), data)
    assert reply.count(b"HTTP/1.1 ") == 1
    assert b"connection: close" in reply.lower()


def test_an_idle_connection_is_closed_after_the_idle_timeout() -> None:
    reply, took = replay_connection(HttpServer(SERVER_ROUTES), _get("/a"), close=False)
    assert reply.count(b"HTTP/1.1 200") == 1
    assert IDLE_TIMEOUT <= took < IDLE_TIMEOUT + 1


def test_a_connection_serves_a_bounded_number_of_requests() -> None:
    data = _get("/a") * (MAX_REQUESTS_PER_CONNECTION + 5)
    reply, _ = replay_connection(HttpServer(SERVER_ROUTES), data)
    assert reply.count(b"HTTP/1.1 200") == MAX_REQUESTS_PER_CONNECTION
    assert reply.lower().count(b"connection: close") == 1
