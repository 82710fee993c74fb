"""Request/response exchanges over TCP, routed by channel name.

Rules: an exchange is one sealed request frame and one sealed response frame.
Incoming: the frame is bounded by max_bytes before it is read, the whole
exchange by `timeout` seconds, and at most MAX_INBOUND run at once (more are
closed unanswered). A frame that fails to open, decode or name a known
channel is counted by reason and the stream closed without a reply.
Outgoing: every failure becomes StreamError(reason) for the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import structlog
import trio

from gossip.core.types import Address
from gossip.hostport import format_hostport
from gossip.runtime import framing as fr
from gossip.runtime.metrics import Counter
from gossip.runtime.network import Network
from gossip.runtime.service import StreamError, StreamHandler
from gossip.security.sealing import Sealer, SealRejected

MAX_INBOUND = 64

log = structlog.get_logger("gossip.streams")


class StreamChannels:
    def __init__(
        self,
        network: Network,
        sealer: Callable[[], Sealer],
        handlers: Mapping[str, StreamHandler],
        *,
        max_bytes: int,
        timeout: float,
        streams: Counter,
        rejected: Counter,
    ) -> None:
        self._network = network
        self._sealer = sealer
        self.handlers = handlers
        self.max_bytes = max_bytes
        self.timeout = timeout
        self._streams = streams
        self._rejected = rejected
        self._inbound = 0

    # ---- server side ----------------------------------------------------------

    async def serve_one(self, stream: trio.abc.Stream, src: Address) -> None:
        if self._inbound >= MAX_INBOUND:
            self._rejected.inc(labels={"reason": "too_many"})
            await trio.aclose_forcefully(stream)
            return
        self._inbound += 1
        try:
            with trio.move_on_after(self.timeout) as scope:
                await self._exchange(stream, src)
            if scope.cancelled_caught:
                self._rejected.inc(labels={"reason": "timeout"})
        except fr.FrameError as exc:
            self._rejected.inc(labels={"reason": exc.reason})
        except SealRejected as exc:
            self._rejected.inc(labels={"reason": exc.reason})
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._rejected.inc(labels={"reason": "broken"})
        except Exception:
            # A bug reached by one stream must not stop the listener (or the agent).
            self._rejected.inc(labels={"reason": "internal_error"})
            log.exception("stream_failed", source=format_hostport(*src))
        finally:
            self._inbound -= 1
            await trio.aclose_forcefully(stream)

    async def _exchange(self, stream: trio.abc.Stream, src: Address) -> None:
        sealer = self._sealer()
        plain = sealer.open(await fr.read_frame(stream, self.max_bytes), src)
        channel, body = fr.decode_request(plain)
        handler = self.handlers.get(channel)
        if handler is None:
            raise fr.FrameError("unknown_channel")
        self._streams.inc(labels={"channel": channel, "direction": "in"})
        try:
            reply = await handler(src, body)
        except Exception as exc:
            log.exception("stream_handler_failed", channel=channel, source=format_hostport(*src))
            response = fr.encode_response(fr.STATUS_ERROR, type(exc).__name__.encode())
        else:
            if reply is None:
                response = fr.encode_response(fr.STATUS_NO_REPLY)
            else:
                response = fr.encode_response(fr.STATUS_OK, reply)
        await fr.write_frame(stream, sealer.seal(response, src))

    # ---- client side ----------------------------------------------------------

    async def request(
        self, to: Address, channel: str, body: bytes, limit: float | None = None
    ) -> bytes | None:
        self._streams.inc(labels={"channel": channel, "direction": "out"})
        sealer = self._sealer()
        request = sealer.seal(fr.encode_request(channel, body), to)
        if len(request) > self.max_bytes:
            raise StreamError("oversized")
        try:
            # A node that was paused (SIGSTOP, a long GC) can ask for a stream whose
            # deadline has already passed: that is an immediate timeout, not an error.
            budget = self.timeout if limit is None else max(0.0, limit)
            with trio.fail_after(budget):
                stream = await self._network.connect(to)
                try:
                    await fr.write_frame(stream, request)
                    frame = await fr.read_frame(stream, self.max_bytes)
                finally:
                    await trio.aclose_forcefully(stream)
        except trio.TooSlowError:
            raise StreamError("timeout") from None
        except fr.FrameError as exc:
            raise StreamError(exc.reason) from None
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise StreamError(f"connect_failed: {exc}") from None
        try:
            status, reply = fr.decode_response(sealer.open(frame, to))
        except SealRejected as exc:
            raise StreamError(exc.reason) from None
        except fr.FrameError as exc:
            raise StreamError(exc.reason) from None
        if status == fr.STATUS_ERROR:
            raise StreamError(f"remote_error: {reply.decode(errors='replace')[:100]}")
        return None if status == fr.STATUS_NO_REPLY else reply
