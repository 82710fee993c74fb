"""Serving a multiplexed connection: many exchanges at once, each answered when done.

Rules:
- Entered after the client's preamble (streams.py tells the two forms
  apart); the server answers with the preamble, then reads REQUEST frames
  while fewer than `max_in_flight` of the connection's exchanges run. At the
  bound it stops reading, so TCP pushes back on the client.
- Each request runs its channel's handler in a task of its own, bounded by
  the stream timeout. The answer (ok, no reply, or an error: the exception's
  name, "unknown_channel", "timeout", "oversized" for an answer over the
  frame bound) goes back with the request's stream id as soon as it is
  ready, whatever the order of the requests.
- A handler's task starts before the next frame is opened, so the sealer's
  record of the source (`authenticated(src)`, which key commands check before
  their first await) still describes this request's frame.
- Garbage (a frame that breaks framing, sealing or the envelope, or a kind
  other than REQUEST) ends the connection, counted in `rejected` by reason;
  the agent goes on. So does a stalled write (the client stopped reading).
- A connection with nothing in flight for SERVER_IDLE_S closes; that is
  longer than the client's idle time, so the client normally closes first
  and never sends into a connection the server is closing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import structlog
import trio

from gossip.core.types import Address
from gossip.hostport import format_hostport
from gossip.runtime import framing as fr
from gossip.runtime import muxframes as mf
from gossip.runtime.connbudget import ConnectionBudget
from gossip.runtime.framereader import FrameReader
from gossip.runtime.metrics import Counter
from gossip.runtime.muxclient import IDLE_S, MAX_IN_FLIGHT
from gossip.runtime.muxlink import MuxLink
from gossip.runtime.service import StreamHandler
from gossip.runtime.streammetrics import StreamMetrics
from gossip.security.sealing import Sealer

IDLE_MARGIN_S = 30.0
SERVER_IDLE_S = IDLE_S + IDLE_MARGIN_S
_QUIET_ENDS = frozenset({"closed", "idle", "evicted"})
"""Ends that are no refusal (everything else is counted in `rejected`)."""

log = structlog.get_logger("gossip.streams")


class MuxServer:
    def __init__(
        self,
        handlers: Mapping[str, StreamHandler],
        sealer: Callable[[], Sealer],
        budget: ConnectionBudget,
        metrics: StreamMetrics,
        *,
        streams: Counter,
        rejected: Counter,
        max_bytes: int,
        timeout: float,
        idle_timeout: float = SERVER_IDLE_S,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self._handlers = handlers
        self._sealer = sealer
        self._budget = budget
        self._metrics = metrics
        self._streams = streams
        self._rejected = rejected
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._idle = idle_timeout
        self._max_in_flight = max_in_flight
        self.connections = 0
        self.in_flight = 0

    async def serve(self, stream: trio.abc.Stream, src: Address, reader: FrameReader) -> None:
        """Serve the connection until it ends (its preamble already read)."""
        link = MuxLink(
            stream,
            reader=reader,
            max_bytes=self._max_bytes,
            seal=lambda plain: self._sealer().seal(plain, src),
            stall_timeout=self._timeout,
            idle_timeout=self._idle,
        )
        if not self._budget.admit(link):
            self._rejected.inc(labels={"reason": "too_many"})
            await trio.aclose_forcefully(stream)
            return
        self.connections += 1
        self._metrics.opened.inc(labels={"direction": "in", "mode": "mux"})
        reason = "write_stalled"
        try:
            with trio.move_on_after(self._timeout):
                await stream.send_all(mf.PREAMBLE)
                reason = ""
            if not reason:
                reason = await link.run(lambda: self._read(link, src))
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            reason = "broken"
        finally:
            self._budget.release(link)
            self.connections -= 1
            if not link.closed:
                await trio.aclose_forcefully(stream)
        self._metrics.closed.inc(labels={"direction": "in", "reason": reason})
        if reason not in _QUIET_ENDS:
            self._rejected.inc(labels={"reason": reason})

    async def _read(self, link: MuxLink, src: Address) -> None:
        slots = trio.Semaphore(self._max_in_flight)
        failure: Exception | None = None
        async with trio.open_nursery() as answering:
            try:
                await self._read_requests(link, src, slots, answering)
            except Exception as exc:  # raised below, outside the nursery (no group)
                failure = exc
            answering.cancel_scope.cancel()  # nobody is left to read the answers
        if failure is not None:
            raise failure

    async def _read_requests(
        self, link: MuxLink, src: Address, slots: trio.Semaphore, answering: trio.Nursery
    ) -> None:
        while True:
            await slots.acquire()
            frame = await link.reader.next()
            if frame is None:
                return
            kind, stream_id, payload = mf.decode(self._sealer().open(frame, src))
            if kind != mf.REQUEST:
                raise fr.FrameError("bad_kind")
            channel, body = fr.decode_request(payload)
            await answering.start(self._answer, link, src, stream_id, channel, body, slots)

    async def _answer(
        self,
        link: MuxLink,
        src: Address,
        stream_id: int,
        channel: str,
        body: bytes,
        slots: trio.Semaphore,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        link.begin()
        self.in_flight += 1
        try:
            task_status.started()  # no checkpoint before the handler's first await
            response = await self._respond(src, channel, body)
            link.send(mf.encode(mf.RESPONSE, stream_id, response))
        finally:
            link.end()
            self.in_flight -= 1
            slots.release()

    async def _respond(self, src: Address, channel: str, body: bytes) -> bytes:
        handler = self._handlers.get(channel)
        if handler is None:
            self._rejected.inc(labels={"reason": "unknown_channel"})
            return fr.encode_response(fr.STATUS_ERROR, b"unknown_channel")
        self._streams.inc(labels={"channel": channel, "direction": "in"})
        reply: bytes | None = None
        with trio.move_on_after(self._timeout) as scope:
            try:
                reply = await handler(src, body)
            except Exception as exc:
                log.exception(
                    "stream_handler_failed", channel=channel, source=format_hostport(*src)
                )
                return fr.encode_response(fr.STATUS_ERROR, type(exc).__name__.encode())
        if scope.cancelled_caught:
            self._rejected.inc(labels={"reason": "timeout"})
            return fr.encode_response(fr.STATUS_ERROR, b"timeout")
        if reply is None:
            return fr.encode_response(fr.STATUS_NO_REPLY)
        response = fr.encode_response(fr.STATUS_OK, reply)
        if len(response) + mf.HEADER_SIZE + self._sealer().overhead > self._max_bytes:
            return fr.encode_response(fr.STATUS_ERROR, b"oversized")
        return response
