"""One multiplexed connection's life: its writer, its reader, its idle timer, its end.

Rules:
- Many tasks hand plaintexts to `send`, which never blocks (the client and
  the server bound what is in flight per connection); one writer task seals
  each when it writes it, so frames leave in the order of their seals, and
  writes what is queued in one send that must finish within `stall_timeout`:
  a connection whose peer stops reading is dropped ("write_stalled"), never
  waited on forever.
- The reader loop is the owner's (client or server); frames come through
  `reader` (framereader.py), bounded by max_bytes.
- A connection ends once, with a reason: the peer closed or broke it,
  garbage (a framing, seal or envelope error: the reason is that error's),
  a stalled write, `idle` (nothing in flight for `idle_timeout`), or
  `close(reason)` from outside (evicted, peer_gone). `run` returns the reason
  after closing the stream; the owner then fails whatever was in flight.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable

import structlog
import trio

from gossip.runtime import framing as fr
from gossip.runtime.framereader import FrameReader
from gossip.security.sealing import SealRejected

log = structlog.get_logger("gossip.streams")


class LinkBroken(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MuxLink:
    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        max_bytes: int,
        seal: Callable[[bytes], bytes],
        stall_timeout: float,
        idle_timeout: float,
        reader: FrameReader | None = None,
    ) -> None:
        """`reader`: one that already holds the connection's first bytes."""
        self.stream = stream
        self.reader = reader or FrameReader(stream, max_bytes)
        self._seal = seal
        self._stall = stall_timeout
        self._idle = idle_timeout
        self._queue: deque[bytes] = deque()
        self._wake = trio.Event()
        self._scope = trio.CancelScope()
        self.reason = ""
        self.in_flight = 0
        self.last_active = trio.current_time()
        self.closed = False

    # ---- state the owner and the connection budget read ------------------------

    def idle_since(self) -> float | None:
        """When the connection last had work, or None while it has some."""
        return None if self.in_flight or self.closed else self.last_active

    def begin(self) -> None:
        self.in_flight += 1
        self.last_active = trio.current_time()

    def end(self) -> None:
        self.in_flight -= 1
        self.last_active = trio.current_time()

    def close(self, reason: str) -> None:
        """End the connection now (from any task); a first reason sticks."""
        if not self.reason:
            self.reason = reason
        self._scope.cancel()

    def send(self, plaintext: bytes) -> None:
        self._queue.append(plaintext)
        self._wake.set()

    # ---- running ----------------------------------------------------------------

    async def run(self, read_loop: Callable[[], Awaitable[None]]) -> str:
        """Run writer, reader and idle timer until one ends; the reason it ended."""
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._guard, read_loop)
                    nursery.start_soon(self._guard, self._write_loop)
                    nursery.start_soon(self._guard, self._idle_loop)
        finally:
            self.closed = True
            await trio.aclose_forcefully(self.stream)
        return self.reason or "closed"

    async def _guard(self, loop: Callable[[], Awaitable[None]]) -> None:
        try:
            await loop()
            self.close("closed")
        except LinkBroken as exc:
            self.close(exc.reason)
        except (fr.FrameError, SealRejected) as exc:
            self.close(exc.reason)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            self.close("broken")
        except Exception:
            # A bug reached by one connection must not stop the agent.
            log.exception("stream_connection_failed")
            self.close("internal_error")

    async def _write_loop(self) -> None:
        while True:
            if not self._queue:
                self._wake = trio.Event()
                await self._wake.wait()
                continue
            data = bytearray()
            while self._queue:
                sealed = self._seal(self._queue.popleft())
                data += fr.HEADER.pack(len(sealed)) + sealed
            with trio.move_on_after(self._stall) as scope:
                await self.stream.send_all(data)
            if scope.cancelled_caught:
                raise LinkBroken("write_stalled")

    async def _idle_loop(self) -> None:
        while True:
            now = trio.current_time()
            due = self.last_active + self._idle
            if now < due:
                await trio.sleep_until(due)
            elif self.in_flight:
                await trio.sleep(self._idle)  # a long exchange: look again later
            else:
                raise LinkBroken("idle")
