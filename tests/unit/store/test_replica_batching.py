"""Replica operations to one peer travel together while the wire is busy, and
each caller gets its own answer; a failed batch is resent operation by operation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio

from gossip.core.store.batch_wire import MAX_BATCH_OPS, BatchError, decode_batch, encode_batch
from gossip.core.types import Address
from gossip.runtime.store.batching import MAX_IN_FLIGHT, ReplicaBatcher

PEER: Address = ("127.0.0.1", 7000)


class FakePeer:
    """Answers each operation with b"re:" + operation; records every request."""

    def __init__(self, *, knows_batches: bool = True) -> None:
        self.requests: list[tuple[str, bytes]] = []
        self.knows_batches = knows_batches
        self.gate = trio.Event()

    async def send(self, to: Address, channel: str, body: bytes) -> bytes | None:
        self.requests.append((channel, body))
        await self.gate.wait()
        if channel == "kv":
            return b"re:" + body
        if not self.knows_batches:
            raise OSError("unknown_channel")
        return encode_batch([b"re:" + item for item in decode_batch(body)])


async def _run_callers(peer: FakePeer, n: int) -> dict[int, bytes | None]:
    answers: dict[int, bytes | None] = {}
    async with trio.open_nursery() as nursery:
        spawn: Callable[[Callable[[], Awaitable[None]]], None] = nursery.start_soon
        batcher = ReplicaBatcher(peer.send, spawn, "kv", "kv-batch")

        async def caller(i: int) -> None:
            answers[i] = await batcher.request(PEER, b"op%d" % i)

        for i in range(n):
            nursery.start_soon(caller, i)
        await trio.testing.wait_all_tasks_blocked()
        peer.gate.set()
    return answers


async def test_each_caller_gets_the_answer_to_its_own_operation() -> None:
    peer = FakePeer()
    answers = await _run_callers(peer, 40)
    assert answers == {i: b"re:op%d" % i for i in range(40)}


async def test_operations_that_pile_up_go_in_fewer_requests() -> None:
    peer = FakePeer()
    await _run_callers(peer, 40)
    assert len(peer.requests) <= MAX_IN_FLIGHT + 1
    assert any(channel == "kv-batch" for channel, _ in peer.requests)


async def test_a_lone_operation_goes_as_a_plain_request() -> None:
    peer = FakePeer()
    assert await _run_callers(peer, 1) == {0: b"re:op0"}
    assert peer.requests == [("kv", b"op0")]


async def test_a_peer_without_batches_still_answers_every_operation() -> None:
    peer = FakePeer(knows_batches=False)
    answers = await _run_callers(peer, 20)
    assert answers == {i: b"re:op%d" % i for i in range(20)}


def test_a_batch_larger_than_the_bound_is_refused() -> None:
    with pytest.raises(BatchError):
        decode_batch(encode_batch([b"x"] * (MAX_BATCH_OPS + 1)))
    with pytest.raises(BatchError):
        decode_batch(b"\xff\x00garbage")
    with pytest.raises(BatchError):
        decode_batch(encode_batch([b"a", b"b"]), expected=3)


async def test_a_stopped_store_fails_the_request_instead_of_hanging() -> None:
    def stopped(fn: Callable[[], Awaitable[None]]) -> None:
        raise RuntimeError("the store service is not running")

    batcher = ReplicaBatcher(FakePeer().send, stopped, "kv", "kv-batch")
    with pytest.raises(RuntimeError):
        await batcher.request(PEER, b"op")
    with pytest.raises(RuntimeError):  # and the next one too: nothing stays scheduled
        await batcher.request(PEER, b"op")


async def test_a_peer_with_nothing_queued_or_in_flight_keeps_no_entry() -> None:
    peer = FakePeer()
    peer.gate.set()
    async with trio.open_nursery() as nursery:
        batcher = ReplicaBatcher(peer.send, nursery.start_soon, "kv", "kv-batch")
        for port in range(7000, 7050):  # fifty peers, as members come and go
            assert await batcher.request(("127.0.0.1", port), b"op") == b"re:op"
        await trio.testing.wait_all_tasks_blocked()
        assert batcher.peers_tracked() == 0
