"""Hypothesis fuzzing of the control API's HTTP parser with hostile requests.

Every input, however broken, must end with either a well-formed HTTP response
or a silent close, within the server's time bound, and never an exception
escaping the connection handler (which would take the whole API down).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gossip.runtime.http import REQUEST_TIMEOUT, ApiRequest, ApiResponse, HttpServer
from gossip.testing.httpreplay import replay_connection


async def _ok(request: ApiRequest) -> ApiResponse:
    return ApiResponse.json({"path": request.path, "n": len(request.body)})


ROUTES = {("GET", "/v1/health"): _ok, ("POST", "/v1/join"): _ok}


def serve_bytes(
    data: bytes, *, close: bool = True, token: str | None = None
) -> tuple[bytes, float]:
    """Feed `data` to one server connection; return (reply bytes, virtual seconds taken)."""
    return replay_connection(HttpServer(ROUTES, token=token), data, close=close)


def assert_clean(reply: bytes) -> None:
    assert reply == b"" or reply.startswith(b"HTTP/1.1 "), reply[:80]


REQUEST_LINES = st.sampled_from(
    [b"GET /v1/health HTTP/1.1", b"POST /v1/join HTTP/1.1", b"GET / HTTP/1.0", b"BREW /pot HTTP/9"]
)
HEADER = st.tuples(st.binary(min_size=0, max_size=40), st.binary(min_size=0, max_size=80)).map(
    lambda kv: kv[0] + b": " + kv[1]
)
STRUCTURED = st.builds(
    lambda line, headers, body, sep: line + sep + sep.join(headers) + sep + sep + body,
    REQUEST_LINES,
    st.lists(
        st.one_of(
            HEADER,
            st.sampled_from(
                [
                    b"Host: x",
                    b"Content-Length: 5",
                    b"Content-Length: 99999999999999999999",
                    b"Content-Length: -1",
                    b"Transfer-Encoding: chunked",
                    b"Authorization: Bearer nope",
                ]
            ),
        ),
        max_size=6,
    ),
    st.binary(max_size=200),
    st.sampled_from([b"\r\n", b"\n", b"\r"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=600), STRUCTURED))
def test_any_request_bytes_get_a_clean_answer_or_a_close(data: bytes) -> None:
    reply, _ = serve_bytes(data)
    assert_clean(reply)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_any_query_string_is_handled(query: bytes) -> None:
    safe = bytes(b for b in query if 0x21 <= b < 0x7F)
    reply, _ = serve_bytes(b"GET /v1/health?" + safe + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 ")


def test_many_query_fields_are_refused_not_crashed() -> None:
    query = b"&".join(b"a%d=1" % i for i in range(200))
    reply, _ = serve_bytes(b"GET /v1/health?" + query + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 4"), reply[:60]


def test_a_slow_request_is_cut_within_the_time_bound() -> None:
    reply, took = serve_bytes(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n", close=False)
    assert reply == b""
    assert REQUEST_TIMEOUT <= took < REQUEST_TIMEOUT + 2


def test_a_never_ending_header_is_cut_by_size() -> None:
    reply, _ = serve_bytes(b"GET /v1/health HTTP/1.1\r\nX-Long: " + b"a" * 200_000, close=False)
    assert reply.startswith(b"HTTP/1.1 431") or reply.startswith(b"HTTP/1.1 400"), reply[:60]


def test_a_wrong_token_is_refused_and_health_stays_open() -> None:
    req = b"POST /v1/join HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\n\r\n"
    assert serve_bytes(req, token="s3cret")[0].startswith(b"HTTP/1.1 401")
    health = b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
    assert serve_bytes(health, token="s3cret")[0].startswith(b"HTTP/1.1 200")


def test_a_malformed_target_is_refused_not_crashed() -> None:
    reply, _ = serve_bytes(b"GET http://[::1/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400"), reply[:60]
