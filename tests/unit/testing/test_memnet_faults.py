"""The in-memory network's fault model: duplication, latency, reordering, one-way
cuts and paused hosts, each with a seeded rng under MockClock."""

from __future__ import annotations

import random

import trio
import trio.testing

from gossip.testing.memnet import MemoryNetwork

A, B = ("10.0.0.1", 7946), ("10.0.0.2", 7946)


async def _pair(net: MemoryNetwork) -> tuple[object, object]:
    return await net.host(A[0]).open_datagram(A), await net.host(B[0]).open_datagram(B)


async def _drain(endpoint: object, limit: float) -> list[bytes]:
    got: list[bytes] = []
    with trio.move_on_after(limit):
        while True:
            data, _ = await endpoint.receive()  # type: ignore[attr-defined]
            got.append(data)
    return got


async def test_duplication_delivers_that_share_twice(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = MemoryNetwork(random.Random(1))
    net.faults.duplicate = 0.5
    a, b = await _pair(net)
    for i in range(200):
        await a.send(B, b"%d" % i)  # type: ignore[attr-defined]
    got = await _drain(b, 1.0)
    assert 250 < len(got) < 350
    assert set(got) == {b"%d" % i for i in range(200)}


async def test_latency_delays_and_reordering_lets_later_datagrams_overtake(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = MemoryNetwork(random.Random(2))
    net.faults.latency, net.faults.reorder, net.faults.reorder_window = 0.1, 0.3, (0.0, 0.2)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(net.run)
        a, b = await _pair(net)
        start = trio.current_time()
        for i in range(50):
            await a.send(B, b"%d" % i)  # type: ignore[attr-defined]
        first, _ = await b.receive()  # type: ignore[attr-defined]
        assert trio.current_time() - start >= 0.1
        rest = await _drain(b, 1.0)
        order = [int(x) for x in [first, *rest]]
        assert sorted(order) == list(range(50)) and order != sorted(order)
        nursery.cancel_scope.cancel()


async def test_a_one_way_cut_drops_one_direction_and_refuses_connects(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = MemoryNetwork(random.Random(3))
    net.cut(A[0], B[0])
    a, b = await _pair(net)
    await a.send(B, b"lost")  # type: ignore[attr-defined]
    await b.send(A, b"kept")  # type: ignore[attr-defined]
    assert await _drain(b, 0.5) == [] and await _drain(a, 0.5) == [b"kept"]
    assert not net.reachable(A[0], B[0]) and net.reachable(B[0], A[0])
    net.heal()
    assert net.reachable(A[0], B[0])


async def test_a_paused_host_sends_and_receives_nothing_until_it_resumes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = MemoryNetwork(random.Random(4))
    a, b = await _pair(net)
    net.pause(B[0])
    await a.send(B, b"queued")  # type: ignore[attr-defined]
    sent = trio.Event()

    async def b_sends() -> None:
        await b.send(A, b"late")  # type: ignore[attr-defined]
        sent.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(b_sends)
        assert await _drain(b, 5.0) == []
        assert not sent.is_set() and await _drain(a, 0.1) == []
        assert net.paused(B[0]) and net.faults.paused == {B[0]}, "the shared model holds the pause"
        net.resume(B[0])
        assert not net.paused(B[0]) and net.faults.paused == set()
        assert await _drain(b, 0.5) == [b"queued"]
        assert sent.is_set() and await _drain(a, 0.5) == [b"late"]
