"""`gossip query` over a real control API: it sends the relay factor, and
when the agent refuses a query over its bounds (HTTP 429) it says why."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import pytest
import trio

from gossip.cli import main
from gossip.runtime.api import ControlledAgent, control_routes
from gossip.runtime.http import HttpServer
from gossip.runtime.queries import QueryRefused, QueryStream


class _Refusing:
    """Just enough of an agent for POST /v1/query: it refuses, as over its rate."""

    def __init__(self) -> None:
        self.asked: list[dict[str, Any]] = []

    def members(self) -> list[Any]:
        return []

    async def start_query(
        self, name: str, payload: bytes = b"", **filters: Mapping[str, str] | str | bool | float
    ) -> QueryStream:
        self.asked.append({"name": name, **filters})
        raise QueryRefused("rate", "over the rate of 5 queries a second; try again in 0.2 s")


async def test_a_refused_query_prints_the_agents_reason_and_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    agent = _Refusing()
    server = HttpServer(control_routes(cast(ControlledAgent, agent)))
    async with trio.open_nursery() as nursery:
        (listener,) = await nursery.start(server.serve, "127.0.0.1", 0)
        port = listener.socket.getsockname()[1]
        argv = ["query", "uptime", "--relay", "2", "--api", f"127.0.0.1:{port}"]
        status = await trio.to_thread.run_sync(main, argv)
        nursery.cancel_scope.cancel()
    assert status == 1
    assert agent.asked and agent.asked[0]["relay"] == 2
    err = capsys.readouterr().err
    assert "HTTP 429" in err and "over the rate of 5 queries a second; try again in" in err
