"""Kept, multiplexed stream connections on the in-memory network under MockClock.

A client and a server StreamChannels on two hosts of one MemoryNetwork: the
first exchange goes one per connection and learns the server's offer, the
rest share one connection per direction, in any order, within their own
deadlines, under the per-connection bound; plus idle close, restarts,
garbage, the connection bound, stalled writes and rolling upgrades.
"""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from gossip.core.types import Address
from gossip.runtime import framing as fr
from gossip.runtime import muxframes as mf
from gossip.runtime.connbudget import ConnectionBudget
from gossip.runtime.metrics import Counter, Registry
from gossip.runtime.network import Network, StreamServer
from gossip.runtime.service import StreamError, StreamHandler
from gossip.runtime.streams import StreamChannels
from gossip.security.keyring import Keyring
from gossip.security.sealer import AesGcmSealer
from gossip.security.sealing import PlainSealer, Sealer
from gossip.testing.hookedstream import HookedStream
from gossip.testing.memnet import MemoryNetwork

SERVER: Address = ("10.0.0.2", 7946)
TIMEOUT = 5.0


async def echo(src: Address, body: bytes) -> bytes:
    return body


class Side:
    """One StreamChannels with its registry, served or not."""

    def __init__(
        self,
        network: Network,
        nursery: trio.Nursery,
        handlers: dict[str, StreamHandler] | None = None,
        sealer: Sealer | None = None,
        **knobs: object,
    ) -> None:
        self.registry = Registry()
        self.rejected = Counter("rejected_total", "Rejected.", ["reason"])
        chosen: Sealer = sealer or PlainSealer()
        self.channels = StreamChannels(
            network,
            lambda: chosen,
            handlers if handlers is not None else {"echo": echo},
            max_bytes=1 << 16,
            timeout=TIMEOUT,
            streams=Counter("streams_total", "Streams.", ["channel", "direction"]),
            rejected=self.rejected,
            metrics=self.registry,
            spawn=lambda: nursery,
            **knobs,  # type: ignore[arg-type]
        )
        self.network = network

    def count(self, name: str, **labels: str) -> float:
        metric = self.registry.get(name)
        assert isinstance(metric, Counter)
        return metric.value(labels or None)

    def opened(self, direction: str, mode: str) -> float:
        return self.count("stream_connections_opened_total", direction=direction, mode=mode)

    def closed(self, direction: str, reason: str) -> float:
        return self.count("stream_connections_closed_total", direction=direction, reason=reason)

    async def request(self, body: bytes, limit: float | None = None, to: Address = SERVER) -> bytes:
        reply = await self.channels.request(to, "echo", body, limit)
        assert reply is not None
        return reply


async def serve_on(
    network: Network, nursery: trio.Nursery, handler: StreamServer
) -> trio.CancelScope:
    """Serve streams on SERVER until the returned scope is cancelled (a stop)."""
    scope = trio.CancelScope()

    async def run(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with scope:
            await network.serve_streams(SERVER, handler, task_status=task_status)

    await nursery.start(run)
    return scope


async def serve_side(nursery: trio.Nursery, side: Side) -> trio.CancelScope:
    return await serve_on(side.network, nursery, side.channels.serve_one)


async def legacy_serve(stream: trio.abc.Stream, src: Address) -> None:
    """An older build's server: one exchange per connection, no offer."""
    try:
        frame = await fr.read_frame(stream, 1 << 16)
        _, body = fr.decode_request(frame)
        await fr.write_frame(stream, fr.encode_response(fr.STATUS_OK, body))
    except (fr.FrameError, trio.BrokenResourceError):
        pass
    finally:
        await trio.aclose_forcefully(stream)


def net() -> MemoryNetwork:
    return MemoryNetwork(random.Random(7))


async def test_exchanges_after_the_first_share_one_kept_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    network = net()
    async with trio.open_nursery() as nursery:
        server = Side(network.host(SERVER[0]), nursery)
        await serve_side(nursery, server)
        client = Side(network.host("10.0.0.1"), nursery)
        for i in range(10):
            assert await client.request(b"n%d" % i) == b"n%d" % i
        assert client.opened("out", "single") == 1  # learns the offer
        assert client.opened("out", "mux") == 1
        assert client.count("stream_connections_reused_total") == 8
        assert server.opened("in", "single") == 1
        assert server.opened("in", "mux") == 1
        nursery.cancel_scope.cancel()


async def test_answers_come_back_out_of_order_to_the_right_exchange(
    autojump_clock: trio.testing.MockClock,
) -> None:
    network = net()
    gates = {b"first": trio.Event(), b"second": trio.Event()}
    finished: list[bytes] = []

    async def gated(src: Address, body: bytes) -> bytes:
        await gates[body].wait()
        return body + b"!"

    async with trio.open_nursery() as nursery:
        server = Side(network.host(SERVER[0]), nursery, {"echo": gated})
        await serve_side(nursery, server)
        client = Side(network.host("10.0.0.1"), nursery)
        gates[b"first"].set()
        assert await client.request(b"first") == b"first!"  # learns the offer
        gates[b"first"] = trio.Event()

        async def ask(body: bytes) -> None:
            assert await client.request(body) == body + b"!"
            finished.append(body)

        async with trio.open_nursery() as asking:
            asking.start_soon(ask, b"first")
            asking.start_soon(ask, b"second")
            await trio.sleep(1)
            gates[b"second"].set()
            await trio.sleep(1)
            assert finished == [b"second"]
            gates[b"first"].set()
        assert finished == [b"second", b"first"]
        assert client.opened("out", "mux") == 1
        nursery.cancel_scope.cancel()


async def test_each_exchange_keeps_its_own_deadline_and_a_late_answer_is_dropped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    network = net()

    async def slow_or_fast(src: Address, body: bytes) -> bytes:
        if body == b"slow":
            await trio.sleep(3)
        return body

    async with trio.open_nursery() as nursery:
        server = Side(network.host(SERVER[0]), nursery, {"echo": slow_or_fast})
        await serve_side(nursery, server)
        client = Side(network.host("10.0.0.1"), nursery)
        await client.request(b"learn")
        async with trio.open_nursery() as asking:

            async def slow() -> None:
                with pytest.raises(StreamError) as caught:
                    await client.request(b"slow", limit=1.0)
                assert caught.value.reason == "timeout"

            asking.start_soon(slow)
            await trio.sleep(0.1)
            assert await client.request(b"fast") == b"fast"
        await trio.sleep(3)
        assert client.count("stream_late_answers_total") == 1
        assert await client.request(b"after") == b"after"  # the connection served on
        assert client.opened("out", "mux") == 1
        nursery.cancel_scope.cancel()


async def test_over_the_in_flight_bound_an_exchange_waits_within_its_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    network = net()
    release = trio.Event()
    running = 0
    most = 0

    async def held(src: Address, body: bytes) -> bytes:
        nonlocal running, most
        if body != b"learn":
            running += 1
            most = max(most, running)
            await release.wait()
            running -= 1
        return body

    async with trio.open_nursery() as nursery:
        server = Side(network.host(SERVER[0]), nursery, {"echo": held}, max_in_flight=2)
        await serve_side(nursery, server)
        client = Side(network.host("10.0.0.1"), nursery, max_in_flight=2)
        await client.request(b"learn")
        done: list[bytes] = []

        async def ask(body: bytes) -> None:
            done.append(await client.request(body, limit=20.0))

        async with trio.open_nursery() as asking:
            for i in range(3):
                asking.start_soon(ask, b"r%d" % i)
            await trio.sleep(1)
            assert running == 2  # the third waits for a slot on the client
            with pytest.raises(StreamError) as caught:
                await client.request(b"impatient", limit=1.0)
            assert caught.value.reason == "timeout"
            release.set()
        assert sorted(done) == [b"r0", b"r1", b"r2"]
        assert most == 2
        nursery.cancel_scope.cancel()


async def test_an_idle_connection_closes_and_the_next_exchange_opens_another(
    autojump_clock: trio.testing.MockClock,
) -> None:
    network = net()
    async with trio.open_nursery() as nursery:
        server = Side(network.host(SERVER[0]), nursery, idle_timeout=10.0)
        await serve_side(nursery, server)
        client = Side(network.host("10.0.0.1"), nursery, idle_timeout=10.0)
        await client.request(b"learn")
        await client.request(b"one")
        await trio.sleep(9)
        await client.request(b"two")  # activity restarts the idle time
        await trio.sleep(9)
        assert client.closed("out", "idle") == 0
        await trio.sleep(2)
        assert client.closed("out", "idle") == 1
        assert client.channels.metrics is not None
        await client.request(b"three")
        assert client.opened("out", "mux") == 2
        assert client.opened("out", "single") == 1
        await trio.sleep(60)
        assert server.closed("in", "closed") + server.closed("in", "idle") == 2
        nursery.cancel_scope.cancel()


async def test_a_restarted_peer_fails_the_exchanges_in_flight_and_is_reconnected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    network = net()
    forever = trio.Event()

    async def hang(src: Address, body: bytes) -> bytes:
        if body == b"hang":
            await forever.wait()
        return body

    async with trio.open_nursery() as nursery:
        server = Side(network.host(SERVER[0]), nursery, {"echo": hang})
        stop = await serve_side(nursery, server)
        client = Side(network.host("10.0.0.1"), nursery)
        await client.request(b"learn")
        await client.request(b"kept")
        async with trio.open_nursery() as asking:

            async def hung() -> None:
                with pytest.raises(StreamError) as caught:
                    await client.request(b"hang", limit=30.0)
                assert caught.value.reason == "closed"

            asking.start_soon(hung)
            await trio.sleep(1)
            stop.cancel()  # the server process ends: its connections close
        assert trio.current_time() < 30  # failed at once, not at its deadline
        restarted = Side(network.host(SERVER[0]), nursery)
        await serve_side(nursery, restarted)
        assert await client.request(b"again") == b"again"
        assert client.opened("out", "mux") == 2
        assert restarted.opened("in", "mux") == 1
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("garbage", "reason"),
    [
        (mf.PREAMBLE_HEAD + b"nope", "bad_preamble"),
        (mf.PREAMBLE + fr.frame(b"\x13\x00\x00\x00\x01xyz"), "bad_kind"),
        (mf.PREAMBLE + fr.frame(b"\x40\x00"), "truncated"),
        (mf.PREAMBLE + fr.frame(mf.encode(mf.REQUEST, 1, b"\x00")), "bad_channel"),
        (mf.PREAMBLE + fr.HEADER.pack(1 << 30), "oversized"),
    ],
)
async def test_garbage_on_a_connection_closes_it_is_counted_and_others_go_on(
    autojump_clock: trio.testing.MockClock, garbage: bytes, reason: str
) -> None:
    network = net()
    async with trio.open_nursery() as nursery:
        server = Side(network.host(SERVER[0]), nursery)
        await serve_side(nursery, server)
        client = Side(network.host("10.0.0.1"), nursery)
        await client.request(b"learn")
        await client.request(b"kept")
        rogue = await network.host("10.0.0.9").connect(SERVER)
        await rogue.send_all(garbage)
        received = b""
        while chunk := await rogue.receive_some():
            received += chunk
        assert received in (b"", mf.PREAMBLE)  # closed without an answer
        assert server.rejected.value({"reason": reason}) == 1
        assert await client.request(b"still") == b"still"
        assert client.opened("out", "mux") == 1
        nursery.cancel_scope.cancel()


async def test_a_connection_that_stops_inside_a_frame_is_closed_when_idle(
    autojump_clock: trio.testing.MockClock,
) -> None:
    network = net()
    async with trio.open_nursery() as nursery:
        server = Side(network.host(SERVER[0]), nursery, idle_timeout=10.0)
        await serve_side(nursery, server)
        rogue = await network.host("10.0.0.9").connect(SERVER)
        await rogue.send_all(mf.PREAMBLE + fr.HEADER.pack(9) + b"abc")
        received = b""
        while chunk := await rogue.receive_some():
            received += chunk
        assert received == mf.PREAMBLE
        assert 10 < trio.current_time() < 60
        assert server.closed("in", "idle") == 1
        nursery.cancel_scope.cancel()


async def test_an_unknown_channel_is_an_error_answer_not_a_closed_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    network = net()
    async with trio.open_nursery() as nursery:
        server = Side(network.host(SERVER[0]), nursery)
        await serve_side(nursery, server)
        client = Side(network.host("10.0.0.1"), nursery)
        await client.request(b"learn")
        with pytest.raises(StreamError) as caught:
            await client.channels.request(SERVER, "nosuch", b"x")
        assert caught.value.reason == "remote_error: unknown_channel"
        assert await client.request(b"still") == b"still"
        assert client.opened("out", "mux") == 1
        nursery.cancel_scope.cancel()


async def test_at_the_connection_bound_the_longest_idle_one_is_evicted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    network = net()
    async with trio.open_nursery() as nursery:
        addresses = [(f"10.0.0.{i}", 7946) for i in (2, 3, 4)]
        for address in addresses:
            side = Side(network.host(address[0]), nursery)
            await nursery.start(
                network.host(address[0]).serve_streams, address, side.channels.serve_one
            )
        client = Side(network.host("10.0.0.1"), nursery, budget=ConnectionBudget(2))
        for address in addresses:
            await client.request(b"learn", to=address)
            await client.request(b"kept", to=address)
            await trio.sleep(1)
        assert client.closed("out", "evicted") == 1
        assert client.channels.budget.limit == 2 and len(client.channels.budget) == 2
        for address in addresses[1:]:
            await client.request(b"again", to=address)
        assert client.opened("out", "mux") == 3  # the evicted one was not reopened
        nursery.cancel_scope.cancel()


class StallingNetwork:
    """Connects whose writes hang once `stall` is set (a peer that stopped reading)."""

    def __init__(self, inner: Network) -> None:
        self.inner = inner
        self.stall = False

    async def open_datagram(self, bind: Address) -> object:
        raise NotImplementedError

    async def serve_streams(
        self,
        bind: Address,
        handler: StreamServer,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        raise NotImplementedError

    async def connect(self, to: Address) -> trio.abc.Stream:
        return HookedStream(await self.inner.connect(to), self._hold)

    async def _hold(self) -> None:
        if self.stall:
            await trio.sleep_forever()


async def test_a_connection_whose_writes_stall_is_dropped_and_fails_its_exchanges(
    autojump_clock: trio.testing.MockClock,
) -> None:
    network = net()
    async with trio.open_nursery() as nursery:
        server = Side(network.host(SERVER[0]), nursery)
        await serve_side(nursery, server)
        stalling = StallingNetwork(network.host("10.0.0.1"))
        client = Side(stalling, nursery)  # type: ignore[arg-type]
        await client.request(b"learn")
        await client.request(b"kept")
        stalling.stall = True
        with pytest.raises(StreamError) as caught:
            await client.request(b"stuck", limit=60.0)
        assert caught.value.reason == "write_stalled"
        assert trio.current_time() < 60  # dropped at the stall bound, not the deadline
        assert client.closed("out", "write_stalled") == 1
        nursery.cancel_scope.cancel()


async def test_a_peer_that_went_away_has_its_connection_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    network = net()
    async with trio.open_nursery() as nursery:
        server = Side(network.host(SERVER[0]), nursery)
        await serve_side(nursery, server)
        client = Side(network.host("10.0.0.1"), nursery)
        await client.request(b"learn")
        await client.request(b"kept")
        client.channels.peer_gone(SERVER)
        await trio.sleep(1)
        assert client.closed("out", "peer_gone") == 1
        nursery.cancel_scope.cancel()


async def test_sealed_exchanges_share_a_connection_many_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    network = net()
    key = bytes(range(32))
    async with trio.open_nursery() as nursery:
        server_sealer = AesGcmSealer(Keyring([key]), "c")
        server = Side(network.host(SERVER[0]), nursery, sealer=server_sealer)
        await serve_side(nursery, server)
        client = Side(network.host("10.0.0.1"), nursery, sealer=AesGcmSealer(Keyring([key]), "c"))
        await client.request(b"learn")
        replies: list[bytes] = []

        async def ask(i: int) -> None:
            replies.append(await client.request(b"%d" % i))

        async with trio.open_nursery() as asking:
            for i in range(100):
                asking.start_soon(ask, i)
        assert sorted(replies) == sorted(b"%d" % i for i in range(100))
        assert client.opened("out", "mux") == 1
        assert sum(server_sealer.rejected.values()) == 0
        outsider = Side(
            network.host("10.0.0.3"), nursery, sealer=AesGcmSealer(Keyring([bytes(32)]), "c")
        )
        with pytest.raises(StreamError):
            await outsider.request(b"x")
        nursery.cancel_scope.cancel()


# ---- rolling upgrade: older builds speak one exchange per connection ---------------


async def test_a_new_client_keeps_one_exchange_per_connection_with_an_older_server(
    autojump_clock: trio.testing.MockClock,
) -> None:
    network = net()
    async with trio.open_nursery() as nursery:
        await serve_on(network.host(SERVER[0]), nursery, legacy_serve)
        client = Side(network.host("10.0.0.1"), nursery)
        for i in range(5):
            assert await client.request(b"%d" % i) == b"%d" % i
        assert client.opened("out", "single") == 5
        assert client.opened("out", "mux") == 0
        nursery.cancel_scope.cancel()


async def test_an_older_client_is_served_one_exchange_per_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    network = net()
    async with trio.open_nursery() as nursery:
        server = Side(network.host(SERVER[0]), nursery)
        await serve_side(nursery, server)
        for i in range(3):
            # What an older build's client does: write, read one frame, close.
            stream = await network.host("10.0.0.1").connect(SERVER)
            await fr.write_frame(stream, fr.encode_request("echo", b"old%d" % i))
            status, body = fr.decode_response(await fr.read_frame(stream, 1 << 16))
            await trio.aclose_forcefully(stream)
            assert (status, body) == (fr.STATUS_OK, b"old%d" % i)
        await trio.sleep(1)
        assert server.opened("in", "single") == 3
        assert sum(server.rejected._values.values()) == 0
        nursery.cancel_scope.cancel()


async def test_a_peer_restarted_with_an_older_build_is_asked_one_exchange_per_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    network = net()
    async with trio.open_nursery() as nursery:
        server = Side(network.host(SERVER[0]), nursery)
        stop = await serve_side(nursery, server)
        client = Side(network.host("10.0.0.1"), nursery)
        await client.request(b"learn")
        await client.request(b"kept")
        stop.cancel()
        await trio.sleep(1)
        await serve_on(network.host(SERVER[0]), nursery, legacy_serve)
        assert await client.request(b"downgraded") == b"downgraded"  # refused, then fell back
        assert await client.request(b"then") == b"then"
        assert client.opened("out", "mux") == 2
        assert client.opened("out", "single") == 3
        assert SERVER not in client.channels.peers
        nursery.cancel_scope.cancel()


def test_no_older_frame_header_starts_like_the_preamble() -> None:
    # An older build refuses a frame above its max_stream_bytes, so the preamble
    # reads as an oversized length to it, and a real length never reads as the preamble.
    (as_length,) = fr.HEADER.unpack(mf.PREAMBLE_HEAD)
    assert as_length > 1 << 31
