"""A sliding replay window over one sender's packet counters.

Rules: a counter is accepted once; counters more than `size` below the highest
one seen are refused as stale. The window is a Python int used as a bitmap
(bit i set = counter `highest - i` was seen), so memory per sender is at most
size/8 bytes. Only authenticated counters are ever recorded, so an attacker
without a key cannot move the window.
"""

from __future__ import annotations

DEFAULT_WINDOW = 65536
"""At a few thousand packets a second from one sender this still admits a
stream frame that was sealed tens of seconds before it arrived."""


class ReplayWindow:
    __slots__ = ("_bits", "_highest", "_mask", "size")

    def __init__(self, size: int = DEFAULT_WINDOW) -> None:
        if size < 1:
            raise ValueError("replay window size must be positive")
        self.size = size
        self._mask = (1 << size) - 1
        self._highest = -1
        self._bits = 0

    def check(self, counter: int) -> str | None:
        """Why `counter` must be refused ("replayed" or "stale"), or None."""
        if counter > self._highest:
            return None
        offset = self._highest - counter
        if offset >= self.size:
            return "stale"
        if self._bits >> offset & 1:
            return "replayed"
        return None

    def record(self, counter: int) -> None:
        """Mark `counter` as seen; call only after `check` passed and the packet
        authenticated."""
        if counter > self._highest:
            shift = counter - self._highest
            self._bits = ((self._bits << shift) | 1) & self._mask if shift < self.size else 1
            self._highest = counter
        else:
            self._bits |= 1 << (self._highest - counter)
