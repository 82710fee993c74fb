"""A stream that runs a hook before each write: the way tests make a kept
connection break or stall when a fault begins after it opened.

Rules: everything but `send_all` passes straight to the wrapped stream; the
hook may raise (the write fails, as a reset connection's does) or wait (the
write hangs, as one to a peer that stopped reading does).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio


class HookedStream(trio.abc.Stream):
    def __init__(self, inner: trio.abc.Stream, before_send: Callable[[], Awaitable[None]]) -> None:
        self.inner = inner
        self._before_send = before_send

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._before_send()
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()
