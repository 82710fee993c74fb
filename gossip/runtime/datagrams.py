"""The agent's UDP traffic: sealed, framed and counted, both ways.

Rules:
- Every datagram sent is sealed (the sealer in use when it is sent) and
  counted; a send the socket refuses is counted as failed (lost), never raised.
- Every datagram received is counted, opened and unframed; one that does not
  open or unframe is counted as rejected with its reason, and a sealer that
  fails is counted and logged: the loop keeps receiving.
- A member datagram goes to the core task; a channel datagram goes to the
  handler of its channel (an unknown channel is rejected). A handler's
  exception is logged, never raised into the loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from gossip.core.types import Address
from gossip.runtime import framing as fr
from gossip.runtime.network import DatagramEndpoint
from gossip.runtime.notify import Notifier, fmt_address
from gossip.runtime.service import DatagramHandler
from gossip.security.sealing import Sealer, SealRejected


class Datagrams:
    def __init__(
        self,
        udp: DatagramEndpoint,
        sealer: Callable[[], Sealer],
        handlers: Mapping[str, DatagramHandler],
        counters: Notifier,
        log: Any,
        to_core: Callable[[Address, bytes], Awaitable[None]],
    ) -> None:
        self._udp = udp
        self._sealer = sealer
        self._handlers = handlers
        self._n = counters
        self._log = log
        self._to_core = to_core

    async def send(self, to: Address, plaintext: bytes) -> None:
        data = self._sealer().seal(plaintext, to)
        n = self._n
        if await self._udp.send(to, data):
            n.packets_out.inc()
            n.bytes_out.inc(len(data))
        else:
            n.send_failed.inc()

    async def receive_loop(self) -> None:
        n = self._n
        while True:
            data, src = await self._udp.receive()
            n.packets_in.inc()
            n.bytes_in.inc(len(data))
            try:
                channel, body = fr.decode_datagram(self._sealer().open(data, src))
            except (SealRejected, fr.FrameError) as exc:
                n.rejected.inc(labels={"reason": exc.reason})
                continue
            except Exception:  # a sealer bug: count it, keep receiving
                n.rejected.inc(labels={"reason": "internal_error"})
                self._log.exception("datagram_open_failed", source=fmt_address(src))
                continue
            if channel is None:
                await self._to_core(src, body)
                continue
            handler = self._handlers.get(channel)
            if handler is None:
                n.rejected.inc(labels={"reason": "unknown_channel"})
                continue
            try:
                handler(src, body)
            except Exception:
                self._log.exception("datagram_handler_failed", channel=channel)
