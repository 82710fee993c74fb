"""Replay raw bytes through one connection of an HttpServer, in virtual time.

Rules: for fuzzing and tests only. The client half of an in-memory stream pair
writes `data` (then closes its sending side unless `close` is False) and reads
until the server closes; trio's MockClock jumps over idle time, so the server's
read and write time limits cost nothing real. Returns the reply bytes and the
virtual seconds the connection took.
"""

from __future__ import annotations

import trio
import trio.testing

from gossip.runtime.http import HttpServer


def replay_connection(
    server: HttpServer, data: bytes, *, close: bool = True
) -> tuple[bytes, float]:
    async def main() -> tuple[bytes, float]:
        client, server_side = trio.testing.memory_stream_pair()
        reply = bytearray()
        start = trio.current_time()

        async def talk() -> None:
            await client.send_all(data)
            if close:
                await client.send_stream.aclose()
            while chunk := await client.receive_some(65536):
                reply.extend(chunk)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(talk)
            await server.handle(server_side)
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        return bytes(reply), trio.current_time() - start

    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
