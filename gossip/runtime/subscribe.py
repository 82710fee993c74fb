"""Membership event subscriptions with bounded queues.

Rules: publishing never blocks the core task; a subscriber whose queue is full
is cut off (its iterator ends) and the drop is logged, so one slow reader can
neither stall the agent nor grow memory without bound.
"""

from __future__ import annotations

from types import TracebackType

import structlog
import trio

from gossip.runtime.service import MemberEvent

log = structlog.get_logger("gossip.subscribe")


class Subscription:
    """An async iterator of MemberEvents; also an (async) context manager that closes it."""

    def __init__(self, owner: Subscribers, maxsize: int) -> None:
        self._owner = owner
        self.send, self._recv = trio.open_memory_channel[MemberEvent](maxsize)
        self.dropped = False

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> MemberEvent:
        try:
            return await self._recv.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None

    def close(self) -> None:
        self._owner.discard(self)
        self.send.close()
        self._recv.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Subscribers:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()

    def subscribe(self, maxsize: int = 256) -> Subscription:
        sub = Subscription(self, maxsize)
        self._subs.add(sub)
        return sub

    def discard(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def publish(self, event: MemberEvent) -> None:
        for sub in list(self._subs):
            try:
                sub.send.send_nowait(event)
            except trio.WouldBlock:
                sub.dropped = True
                self._subs.discard(sub)
                sub.send.close()
                log.warning("subscriber_dropped", reason="queue_full")
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subs.discard(sub)

    def close_all(self) -> None:
        for sub in list(self._subs):
            sub.send.close()
        self._subs.clear()

    def __len__(self) -> int:
        return len(self._subs)
