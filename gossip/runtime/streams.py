"""Request/response exchanges over TCP, routed by channel name.

Rules: an exchange is one sealed request frame and one sealed response frame,
carried in one of two forms:
- multiplexed: one kept connection per peer and direction carries many
  exchanges at once, matched by stream id (muxclient.py, muxserver.py);
- one exchange per connection, the only form of older builds.
Incoming: a connection's first four bytes tell the forms apart (muxframes.py).
In the one-exchange form the frame is bounded by max_bytes before it is
read, the whole exchange by `timeout` seconds, and at most MAX_INBOUND such
connections (counting those not yet identified) run at once: more are
closed unanswered. A frame that fails to open, decode or name a known
channel is counted by reason and the stream closed without a reply. An
answer is followed by the offer of the multiplexed form.
Outgoing: a peer whose offer was seen (muxpeers.py) gets the multiplexed
form, any other one exchange per connection (which reads the offer if one
follows). A multiplexed connection the peer refuses (it was restarted with
an older build) makes us forget the offer, and the exchange falls back to
the one-exchange form within its deadline. Without a nursery to run
connections in (`spawn` missing or returning None) every exchange is of the
one-exchange form. Every failure becomes StreamError(reason) for the caller.
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
from gossip.runtime.metrics import Counter, Registry
from gossip.runtime.muxclient import IDLE_S, MAX_IN_FLIGHT, MUX_REFUSED, MuxClient
from gossip.runtime.muxpeers import MuxPeers
from gossip.runtime.muxserver import IDLE_MARGIN_S, MuxServer
from gossip.runtime.network import Network
from gossip.runtime.service import StreamError, StreamHandler
from gossip.runtime.streammetrics import StreamMetrics
from gossip.security.sealing import Sealer, SealRejected

MAX_INBOUND = 64
OFFER_WAIT_S = 1.0
"""How long a one-exchange client waits for the offer after the answer (it
comes in the same write, or the stream ends at once)."""

log = structlog.get_logger("gossip.streams")

Spawn = Callable[[], trio.Nursery | None]


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
        metrics: Registry | None = None,
        spawn: Spawn | None = None,
        budget: ConnectionBudget | None = None,
        idle_timeout: float = IDLE_S,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        """`spawn` gives the nursery that runs kept connections (the agent's)."""
        self._network = network
        self._sealer = sealer
        self.handlers = handlers
        self.max_bytes = max_bytes
        self.timeout = timeout
        self._streams = streams
        self._rejected = rejected
        self._inbound = 0
        self._spawn: Spawn = spawn or (lambda: None)
        self.peers = MuxPeers()
        self.budget = budget if budget is not None else ConnectionBudget()
        self.metrics = StreamMetrics(metrics or Registry())
        self._client = MuxClient(
            network,
            sealer,
            self._spawn,
            self.budget,
            self.metrics,
            max_bytes=max_bytes,
            timeout=timeout,
            idle_timeout=idle_timeout,
            max_in_flight=max_in_flight,
        )
        self._server = MuxServer(
            handlers,
            sealer,
            self.budget,
            self.metrics,
            streams=streams,
            rejected=rejected,
            max_bytes=max_bytes,
            timeout=timeout,
            idle_timeout=idle_timeout + IDLE_MARGIN_S,
            max_in_flight=max_in_flight,
        )
        self.metrics.read_from(
            lambda: (self._client.connections, self._server.connections),
            lambda: (self._client.in_flight, self._server.in_flight),
        )

    def peer_gone(self, address: Address) -> None:
        """The member at `address` failed or left: close our connection to it."""
        self._client.drop(address)

    # ---- server side ----------------------------------------------------------

    async def serve_one(self, stream: trio.abc.Stream, src: Address) -> None:
        if self._inbound >= MAX_INBOUND:
            self._rejected.inc(labels={"reason": "too_many"})
            await trio.aclose_forcefully(stream)
            return
        self._inbound += 1
        reader = FrameReader(stream, self.max_bytes)
        multiplexed = False
        try:
            with trio.move_on_after(self.timeout) as scope:
                if await reader.peek(len(mf.PREAMBLE_HEAD)) == mf.PREAMBLE_HEAD:
                    if await reader.exactly(len(mf.PREAMBLE)) != mf.PREAMBLE:
                        raise fr.FrameError("bad_preamble")
                    multiplexed = True
                else:
                    self.metrics.opened.inc(labels={"direction": "in", "mode": "single"})
                    await self._exchange(stream, reader, src)
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
            if not multiplexed:
                await trio.aclose_forcefully(stream)
        if multiplexed:
            await self._server.serve(stream, src, reader)

    async def _exchange(self, stream: trio.abc.Stream, reader: FrameReader, src: Address) -> None:
        frame = await reader.next()
        if frame is None:
            raise fr.FrameError("truncated")
        sealer = self._sealer()
        plain = sealer.open(frame, src)
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
        # One write: an older client reads the answer and closes, never the offer.
        await stream.send_all(
            fr.frame(sealer.seal(response, src)) + fr.frame(sealer.seal(mf.OFFER, src))
        )

    # ---- client side ----------------------------------------------------------

    async def request(
        self, to: Address, channel: str, body: bytes, limit: float | None = None
    ) -> bytes | None:
        self._streams.inc(labels={"channel": channel, "direction": "out"})
        plain = fr.encode_request(channel, body)
        if len(plain) + mf.HEADER_SIZE + self._sealer().overhead > self.max_bytes:
            raise StreamError("oversized")
        # A node that was paused (SIGSTOP, a long GC) can ask for a stream whose
        # deadline has already passed: that is an immediate timeout, not an error.
        budget = self.timeout if limit is None else max(0.0, limit)
        deadline = trio.current_time() + budget
        if to in self.peers and self._spawn() is not None:
            try:
                with trio.fail_at(deadline):
                    status, reply = await self._client.exchange(to, plain)
            except trio.TooSlowError:
                raise StreamError("timeout") from None
            except StreamError as exc:
                if exc.reason != MUX_REFUSED:
                    raise
                self.peers.forget(to)
            else:
                return _answer(status, reply)
        return await self._single(to, plain, deadline)

    async def _single(self, to: Address, plain: bytes, deadline: float) -> bytes | None:
        """One exchange on a connection of its own (the form every build serves)."""
        sealer = self._sealer()
        request = sealer.seal(plain, to)
        if len(request) > self.max_bytes:
            raise StreamError("oversized")
        stream: trio.abc.Stream | None = None
        try:
            with trio.fail_at(deadline):
                stream = await self._network.connect(to)
                self.metrics.opened.inc(labels={"direction": "out", "mode": "single"})
                await fr.write_frame(stream, request)
                reader = FrameReader(stream, self.max_bytes)
                frame = await reader.next()
                if frame is None:
                    raise fr.FrameError("truncated")
            with trio.move_on_at(min(deadline, trio.current_time() + OFFER_WAIT_S)):
                if await _offered(reader, sealer, to):
                    self.peers.learn(to)
        except trio.TooSlowError:
            raise StreamError("timeout") from None
        except fr.FrameError as exc:
            raise StreamError(exc.reason) from None
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise StreamError(f"connect_failed: {exc}") from None
        finally:
            if stream is not None:
                await trio.aclose_forcefully(stream)
        try:
            status, reply = fr.decode_response(sealer.open(frame, to))
        except SealRejected as exc:
            raise StreamError(exc.reason) from None
        except fr.FrameError as exc:
            raise StreamError(exc.reason) from None
        return _answer(status, reply)


async def _offered(reader: FrameReader, sealer: Sealer, to: Address) -> bool:
    """Whether the frame after an answer is the multiplexed form's offer."""
    try:
        frame = await reader.next(mf.MAX_OFFER_FRAME)
        return frame is not None and sealer.open(frame, to) == mf.OFFER
    except (fr.FrameError, SealRejected, OSError, trio.BrokenResourceError):
        return False


def _answer(status: int, reply: bytes) -> bytes | None:
    if status == fr.STATUS_ERROR:
        raise StreamError(f"remote_error: {reply.decode(errors='replace')[:100]}")
    return None if status == fr.STATUS_NO_REPLY else reply
