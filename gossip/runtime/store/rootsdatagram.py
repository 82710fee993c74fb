"""Roots checks by datagram: replicas that agree compare roots without a connection.

Rules:
- A roots check (gossip.runtime.store.sync) whose message fits one datagram goes
  by UDP on QUESTION_CHANNEL behind an 8-byte random nonce; the answer comes back
  on ANSWER_CHANNEL behind the same nonce. Everything else falls back to the
  stream roots check: a check too big for a datagram, no answer within the wait
  (the membership probe timeout), or an answer that is only the nonce ("ask by
  stream", sent when the answer does not fit). A lost datagram costs one wait.
- The asker takes the first answer that matches an outstanding nonce, from the
  address it asked, within the wait; late, repeated and unmatched answers are
  dropped, so its proofs of equal roots and its clock reading are as fresh as over
  a stream. The answering side handles a question exactly like a stream roots
  check (proofs and clock reading included): a delayed question is no older than
  one held up in a paused peer's stream.
- At most MAX_WAITING questions are outstanding; more fall back to streams.
- Datagrams are sealed like every other when a key is set.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio

from gossip.core.types import Address
from gossip.runtime import framing as fr
from gossip.runtime.service import DatagramHandler, ServiceHost

QUESTION_CHANNEL = "kv-roots-q"
ANSWER_CHANNEL = "kv-roots-a"
NONCE_SIZE = 8
MAX_WAITING = 64


@dataclass
class _Waiter:
    address: Address
    done: trio.Event = field(default_factory=trio.Event)
    answer: bytes | None = None


class RootsByDatagram:
    """Both sides of datagram roots checks for one store service.

    `answer(question_body) -> answer_body` is the responder's roots comparison (the
    same as for a stream check); `spawn` runs a send in the service's nursery."""

    def __init__(
        self,
        host: ServiceHost,
        answer: Callable[[bytes], bytes],
        spawn: Callable[[Callable[[], Awaitable[None]]], None],
    ) -> None:
        self.host = host
        self.answer = answer
        self.spawn = spawn
        self.waiting: dict[bytes, _Waiter] = {}
        self.asked = 0
        self.answered = 0
        """Questions sent, and of them those answered by datagram (the rest went by stream)."""

    def channels(self) -> dict[str, DatagramHandler]:
        return {QUESTION_CHANNEL: self.on_question, ANSWER_CHANNEL: self.on_answer}

    def fits(self, channel: str, body: bytes) -> bool:
        size = len(fr.encode_channel_datagram(channel, b"")) + NONCE_SIZE + len(body)
        return size <= self.host.config.packet_budget

    async def ask(self, address: Address, body: bytes) -> bytes | None:
        """The answer to roots check `body` by datagram, or None: ask by stream."""
        if not self.fits(QUESTION_CHANNEL, body) or len(self.waiting) >= MAX_WAITING:
            return None
        nonce = secrets.token_bytes(NONCE_SIZE)
        waiter = _Waiter(address)
        self.waiting[nonce] = waiter
        self.asked += 1
        try:
            await self.host.send_datagram(address, QUESTION_CHANNEL, nonce + body)
            with trio.move_on_after(self.host.config.probe_timeout):
                await waiter.done.wait()
        finally:
            del self.waiting[nonce]
        if waiter.answer:
            self.answered += 1
            return waiter.answer
        return None

    def on_question(self, src: Address, payload: bytes) -> None:
        nonce, body = payload[:NONCE_SIZE], payload[NONCE_SIZE:]
        if len(nonce) != NONCE_SIZE:
            return
        answer = self.answer(body)
        if not self.fits(ANSWER_CHANNEL, answer):
            answer = b""  # ask by stream
        out = nonce + answer

        async def send() -> None:
            await self.host.send_datagram(src, ANSWER_CHANNEL, out)

        self.spawn(send)

    def on_answer(self, src: Address, payload: bytes) -> None:
        waiter = self.waiting.get(payload[:NONCE_SIZE])
        if waiter is None or waiter.done.is_set() or waiter.address != src:
            return
        waiter.answer = payload[NONCE_SIZE:]
        waiter.done.set()
