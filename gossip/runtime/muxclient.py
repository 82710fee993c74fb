"""Outgoing exchanges over one kept, multiplexed connection per peer address.

Rules:
- The first exchange to an address opens its connection (in a task of the
  agent's nursery, bounded by the stream timeout); later ones share it while
  it is open. Each exchange takes a stream id, writes one REQUEST and waits
  for the RESPONSE with that id: answers may come in any order.
- At most `max_in_flight` exchanges per connection; the next one waits for a
  slot within its caller's deadline. The caller bounds each exchange's time
  (StreamChannels' limit or timeout); one that gives up leaves its answer to
  be dropped when it comes (counted late), and the connection serves on.
- A connection that ends fails every exchange in flight on it with
  StreamError(reason) and is forgotten, so the next exchange reconnects (a
  peer that restarted gets a new connection). If it ended before the
  server's preamble came, the peer does not serve this form: the reason is
  "mux_refused" and the caller falls back to one exchange per connection.
- Connections close after `idle_timeout` without work (IDLE_S, longer than
  a push-pull interval so a pair's periodic exchanges keep theirs), when the
  connection budget evicts them, and with `drop(address)` (the peer failed
  or left).
- One connection per direction: this client's connections carry only its
  own requests, and a peer's requests come in on the peer's connection
  (muxserver.py). No tie-break between two simultaneous opens is needed, an
  inbound connection never has to be matched to the peer's advertised
  address, and each side's back-pressure stays with its own requests.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from gossip.core.types import Address
from gossip.runtime import framing as fr
from gossip.runtime import muxframes as mf
from gossip.runtime.connbudget import ConnectionBudget
from gossip.runtime.muxlink import LinkBroken, MuxLink
from gossip.runtime.network import Network
from gossip.runtime.service import StreamError
from gossip.runtime.streammetrics import StreamMetrics
from gossip.security.sealing import Sealer

MAX_IN_FLIGHT = 32
IDLE_S = 90.0
MUX_REFUSED = "mux_refused"
_REFUSALS = frozenset({"closed", "broken", "bad_preamble", "no_preamble"})
"""How a connection ends when its peer does not speak this form: an older
build reads the preamble as an oversized length and closes."""


class _Exchange:
    __slots__ = ("body", "done", "error", "status")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.status = fr.STATUS_ERROR
        self.body = b""
        self.error = ""


class _Outbound:
    """One connection to one address, from the moment it is asked for."""

    def __init__(self, to: Address, max_in_flight: int) -> None:
        self.to = to
        self.ready = trio.Event()
        self.link: MuxLink | None = None
        self.error = ""
        self.acked = False
        self.pending: dict[int, _Exchange] = {}
        self.slots = trio.Semaphore(max_in_flight)
        self.connect_scope = trio.CancelScope()
        self._next_id = 0

    @property
    def ending(self) -> bool:
        """Closing or closed: a new exchange opens a new connection instead."""
        return bool(self.error) or (self.link is not None and bool(self.link.reason))

    def idle_since(self) -> float | None:
        return self.link.idle_since() if self.link is not None else None

    def close(self, reason: str) -> None:
        if self.link is not None:
            self.link.close(reason)
        else:
            self.error = self.error or reason
            self.connect_scope.cancel()

    def new_id(self) -> int:
        while True:
            self._next_id = self._next_id % mf.MAX_STREAM_ID + 1
            if self._next_id not in self.pending:
                return self._next_id

    def fail(self, reason: str) -> None:
        self.error = self.error or reason
        for exchange in self.pending.values():
            exchange.error = self.error
            exchange.done.set()
        self.pending.clear()
        self.ready.set()


class MuxClient:
    def __init__(
        self,
        network: Network,
        sealer: Callable[[], Sealer],
        spawn: Callable[[], trio.Nursery | None],
        budget: ConnectionBudget,
        metrics: StreamMetrics,
        *,
        max_bytes: int,
        timeout: float,
        idle_timeout: float = IDLE_S,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self._network = network
        self._sealer = sealer
        self._spawn = spawn
        self._budget = budget
        self._metrics = metrics
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._idle = idle_timeout
        self._max_in_flight = max_in_flight
        self._conns: dict[Address, _Outbound] = {}

    @property
    def connections(self) -> int:
        return len(self._conns)

    @property
    def in_flight(self) -> int:
        return sum(len(c.pending) for c in self._conns.values())

    def drop(self, to: Address, reason: str = "peer_gone") -> None:
        conn = self._conns.get(to)
        if conn is not None:
            conn.close(reason)

    async def exchange(self, to: Address, request: bytes) -> tuple[int, bytes]:
        """Send one request envelope, return (status, body) of its answer.
        Raises StreamError; the caller bounds the time."""
        conn = self._conns.get(to)
        if conn is None or conn.ending:
            conn = self._open(to)
        else:
            self._metrics.reused.inc()
        await conn.ready.wait()
        async with conn.slots:
            if conn.error or conn.link is None:
                raise StreamError(conn.error or "closed")
            link = conn.link
            stream_id = conn.new_id()
            exchange = _Exchange()
            conn.pending[stream_id] = exchange
            link.begin()
            try:
                link.send(mf.encode(mf.REQUEST, stream_id, request))
                await exchange.done.wait()
            finally:
                conn.pending.pop(stream_id, None)
                link.end()
        if exchange.error:
            raise StreamError(exchange.error)
        return exchange.status, exchange.body

    def _open(self, to: Address) -> _Outbound:
        nursery = self._spawn()
        if nursery is None:
            raise StreamError("stopped")
        conn = _Outbound(to, self._max_in_flight)
        if not self._budget.admit(conn):
            raise StreamError("too_many_connections")
        try:
            nursery.start_soon(self._run, conn)
        except RuntimeError:  # the agent's nursery is closing
            self._budget.release(conn)
            raise StreamError("stopped") from None
        self._conns[to] = conn
        self._metrics.opened.inc(labels={"direction": "out", "mode": "mux"})
        return conn

    async def _run(self, conn: _Outbound) -> None:
        reason = "closed"
        try:
            link = await self._connect(conn)
            if link is None:
                reason = conn.error
                return
            conn.link = link
            conn.ready.set()
            reason = await link.run(lambda: self._read(conn, link))
            if not conn.acked and reason in _REFUSALS:
                conn.fail(MUX_REFUSED)
        finally:
            conn.fail(reason)
            if self._conns.get(conn.to) is conn:
                del self._conns[conn.to]
            self._budget.release(conn)
            self._metrics.closed.inc(labels={"direction": "out", "reason": _token(reason)})

    async def _connect(self, conn: _Outbound) -> MuxLink | None:
        stream: trio.abc.Stream | None = None
        try:
            with conn.connect_scope, trio.fail_after(self._timeout):
                stream = await self._network.connect(conn.to)
                await stream.send_all(mf.PREAMBLE)
        except trio.TooSlowError:
            conn.error = "timeout"
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            conn.error = f"connect_failed: {exc}"
        if conn.connect_scope.cancelled_caught or conn.error:
            if stream is not None:
                await trio.aclose_forcefully(stream)
            conn.error = conn.error or "closed"
            return None
        assert stream is not None
        to = conn.to
        return MuxLink(
            stream,
            max_bytes=self._max_bytes,
            seal=lambda plain: self._sealer().seal(plain, to),
            stall_timeout=self._timeout,
            idle_timeout=self._idle,
        )

    async def _read(self, conn: _Outbound, link: MuxLink) -> None:
        preamble: bytes | None = b""
        with trio.move_on_after(self._timeout):
            preamble = await link.reader.exactly(len(mf.PREAMBLE))
        if preamble == b"":
            raise LinkBroken("no_preamble")
        if preamble is None:
            return  # closed before answering: not a server of this form
        if preamble != mf.PREAMBLE:
            raise LinkBroken("bad_preamble")
        conn.acked = True
        while True:
            frame = await link.reader.next()
            if frame is None:
                return
            kind, stream_id, payload = mf.decode(self._sealer().open(frame, conn.to))
            if kind != mf.RESPONSE:
                raise fr.FrameError("bad_kind")
            status, body = fr.decode_response(payload)
            exchange = conn.pending.pop(stream_id, None)
            if exchange is None:
                self._metrics.late.inc()
                continue
            exchange.status, exchange.body = status, body
            exchange.done.set()


def _token(reason: str) -> str:
    """A metric label: the reason without a connect error's free text."""
    return reason.split(":", 1)[0]
