"""The core task: the one task that touches the membership Node.

Rules:
- Exactly one task calls the Node's mutating methods; every other task hands
  it a closure through a bounded inbox (INBOX_SIZE), and waits when it is full.
- After every input the outputs are drained (`drain`, the agent's); up to 64
  closures already waiting run first, then one drain, which a deadline never
  cancels half-way, so no output is lost.
- Due timers fire as soon as the task sees them; how late they fire is
  reported to the Node first (Node.loop_lagged), so the probes a stall of the
  event loop made late restart before they expire, then to `lagged` (the
  agent's loop-lag watch: the core's timers are its clock, no task of its own).
- An exception raised by a caller's closure (a refused input) is raised in
  that caller, never in the core task.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import TypeVar

import trio

from gossip.core.membership.node import Node
from gossip.core.types import Address

T = TypeVar("T")
INBOX_SIZE = 1024
BATCH = 64
"""Closures run before one drain, when more are waiting."""

Item = Callable[[float], None]


class CoreTask:
    def __init__(self) -> None:
        self._node: Node | None = None
        self._inbox_send, self._inbox_recv = trio.open_memory_channel[Item](INBOX_SIZE)

    async def call(self, fn: Callable[[Node, float], T]) -> T:
        """Run `fn(node, now)` in the core task and return its result."""
        done = trio.Event()
        box: list[T] = []

        failed: list[Exception] = []

        def run(now: float) -> None:
            assert self._node is not None
            try:
                box.append(fn(self._node, now))
            except Exception as exc:  # the caller's error (a refused input), not the core task's
                failed.append(exc)
            done.set()

        await self._inbox_send.send(run)
        await done.wait()
        if failed:
            raise failed[0]
        return box[0]

    async def deliver(self, src: Address, body: bytes) -> None:
        """Hand the Node a member datagram (without waiting for it to be applied)."""

        def run(now: float) -> None:
            assert self._node is not None
            self._node.receive_datagram(now, src, body)

        await self._inbox_send.send(run)

    async def run(
        self,
        node: Node,
        drain: Callable[[], Awaitable[None]],
        lagged: Callable[[float, float], None] = lambda now, lag: None,
    ) -> None:
        self._node = node
        await drain()
        while True:
            deadline = node.next_deadline()
            now = trio.current_time()
            if deadline is not None and deadline <= now:
                # How late the timers fire is how long the loop was stalled; the
                # core hears it first, so it can restart the probes that the stall
                # (not the target) made late, before they expire below.
                node.loop_lagged(now, now - deadline)
                lagged(now, now - deadline)
                node.handle_timeout(now)
                await drain()
                continue
            item: Item | None = None
            with trio.move_on_at(deadline if deadline is not None else math.inf):
                item = await self._inbox_recv.receive()
            if item is None:
                continue  # the deadline passed: fire the timers above
            item(trio.current_time())
            # Batch whatever else is already waiting, then drain once (never cancelled
            # half-way by the deadline, so no output is lost).
            for _ in range(BATCH):
                try:
                    item = self._inbox_recv.receive_nowait()
                except trio.WouldBlock:
                    break
                item(trio.current_time())
            await drain()
