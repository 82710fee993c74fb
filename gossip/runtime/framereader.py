"""Reading many length-prefixed frames from one stream through a buffer.

Rules: frames are framing.py's (u32 big-endian length | bytes). `next` returns
the next frame, None when the stream ends cleanly between frames, or raises
FrameError("oversized") for a declared length above the bound (before any of
the frame is buffered beyond what one read brought) and FrameError("truncated")
when the stream ends inside a frame. The buffer holds at most one frame plus
one read, so a reader costs max_bytes + READ_SIZE at most. Time bounds are the
caller's.
"""

from __future__ import annotations

import trio

from gossip.runtime.framing import HEADER, FrameError

READ_SIZE = 65536


class FrameReader:
    def __init__(self, stream: trio.abc.ReceiveStream, max_bytes: int) -> None:
        self._stream = stream
        self._max = max_bytes
        self._buf = bytearray()

    async def _fill(self, n: int) -> bool:
        """Buffer at least n bytes; False when the stream ended first."""
        while len(self._buf) < n:
            chunk = await self._stream.receive_some(max(READ_SIZE, n - len(self._buf)))
            if not chunk:
                return False
            self._buf += chunk
        return True

    async def peek(self, n: int) -> bytes | None:
        """The next n raw bytes, left in the buffer; None if the stream ended first."""
        if not await self._fill(n):
            return None
        return bytes(self._buf[:n])

    async def exactly(self, n: int) -> bytes | None:
        """The next n raw bytes (a preamble); None if the stream ended first."""
        if not await self._fill(n):
            return None
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    async def next(self, max_bytes: int | None = None) -> bytes | None:
        """The next frame; `max_bytes` lowers the reader's bound for this one."""
        if not await self._fill(HEADER.size):
            if self._buf:
                raise FrameError("truncated")
            return None
        (length,) = HEADER.unpack_from(self._buf)
        if length > (self._max if max_bytes is None else min(max_bytes, self._max)):
            raise FrameError("oversized")
        if not await self._fill(HEADER.size + length):
            raise FrameError("truncated")
        end = HEADER.size + length
        frame = bytes(self._buf[HEADER.size : end])
        del self._buf[:end]
        return frame
