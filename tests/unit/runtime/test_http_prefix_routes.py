"""Prefix routes on the control API ("/v1/kv/*"): exact routes first, longest prefix next."""

from gossip.runtime.http import ApiRequest, ApiResponse, HttpServer


def request(method: str, path: str) -> ApiRequest:
    return ApiRequest(method, path, {}, {}, b"")


def answer(text: str):  # type: ignore[no-untyped-def]
    async def handler(req: ApiRequest) -> ApiResponse:
        return ApiResponse.text(f"{text} {req.path}")

    return handler


async def test_prefix_routes_match_by_prefix_and_exact_routes_win() -> None:
    server = HttpServer(
        {
            ("GET", "/v1/kv"): answer("list"),
            ("GET", "/v1/kv/*"): answer("key"),
            ("GET", "/v1/kv/special/*"): answer("special"),
            ("GET", "/v1/kv/exact"): answer("exact"),
        }
    )
    assert (await server._dispatch(request("GET", "/v1/kv"))).body == b"list /v1/kv"
    assert (await server._dispatch(request("GET", "/v1/kv/a%2Fb"))).body == b"key /v1/kv/a%2Fb"
    assert (await server._dispatch(request("GET", "/v1/kv/special/x"))).body.startswith(b"special")
    assert (await server._dispatch(request("GET", "/v1/kv/exact"))).body.startswith(b"exact")
    assert (await server._dispatch(request("PUT", "/v1/kv/a"))).status == 405
    assert (await server._dispatch(request("GET", "/v1/kvx"))).status == 404
