"""The agent's side of queries: starting them, routing acks and answers to whoever asked.

Rules: a query started here gets a bounded channel (MAX_ANSWERS), opened in
the core task together with the query, before any answer can be drained; the
core task puts each QueryAnswered on it without blocking (a full or closed one
drops the answer, counted by the caller), and the asker reads until the
query's deadline with QueryStream.next(). Closing forgets the query. A query
the node refuses (size, filters, too many open), or one that would wait
longer than MAX_TIMEOUT_S, is refused with ValueError in the asker.
The queries an agent originates are bounded: at most MAX_CONCURRENT open
at once, and a token bucket of RATE_BURST refilled at RATE_PER_S; admit()
refuses beyond either with QueryRefused (the API's 429), counted by reason.
"""

from __future__ import annotations

from collections.abc import Mapping

import trio

from gossip.core.membership import outputs as o
from gossip.core.membership.node import Node
from gossip.core.membership.tokenbucket import TokenBucket
from gossip.runtime.coretask import CoreTask
from gossip.runtime.metrics import Registry

MAX_ANSWERS = 4096
MAX_TIMEOUT_S = 300.0
MAX_CONCURRENT = 16
RATE_PER_S = 5.0
RATE_BURST = 10


class QueryRefused(ValueError):
    """Over this agent's bounds on queries: try again later. `reason` is
    `concurrency` or `rate`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class QueryStream:
    """The acks and answers of one query, until its deadline."""

    def __init__(self, owner: QueryRouter, qid: int, deadline: float) -> None:
        self.qid = qid
        self.deadline = deadline
        self._owner = owner
        self._send, self._recv = trio.open_memory_channel[o.QueryAnswered](MAX_ANSWERS)

    async def next(self) -> o.QueryAnswered | None:
        """The next ack or answer, or None once the deadline has passed."""
        with trio.move_on_at(self.deadline):
            try:
                return await self._recv.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                return None
        return None

    def close(self) -> None:
        self._owner.forget(self.qid)
        self._send.close()
        self._recv.close()


class QueryRouter:
    def __init__(self, metrics: Registry) -> None:
        self._open: dict[int, QueryStream] = {}
        self._bucket = TokenBucket(RATE_PER_S, RATE_BURST)
        self._refused = metrics.counter(
            "queries_refused_total", "Queries this agent refused to start, by reason.", ("reason",)
        )

    def admit(self, now: float) -> None:
        """Spend a token for a new query, or raise QueryRefused."""
        # A stream whose reader never came (an API client gone before the
        # first line) is never closed: past its deadline it no longer counts.
        for qid in [q for q, s in self._open.items() if now > s.deadline]:
            self._open.pop(qid).close()
        if len(self._open) >= MAX_CONCURRENT:
            self._refused.inc(labels={"reason": "concurrency"})
            raise QueryRefused(
                "concurrency",
                f"{MAX_CONCURRENT} queries of this agent are open, the most it allows;"
                " try again when one is done",
            )
        if not self._bucket.take(now):
            self._refused.inc(labels={"reason": "rate"})
            wait = self._bucket.wait_s(now)
            raise QueryRefused(
                "rate",
                f"over the rate of {RATE_PER_S:g} queries a second (bursts of {RATE_BURST});"
                f" try again in {wait:.1f} s",
            )

    async def start(
        self,
        core: CoreTask,
        name: str,
        payload: bytes,
        *,
        node: str,
        tags: Mapping[str, str],
        ack: bool,
        wait_s: float,
        relay: int = 0,
    ) -> QueryStream:
        """Ask the members whose name and tags match these globs (in the core
        task), replies also relayed through `relay` members; QueryRefused
        (a ValueError) when over this agent's bounds."""
        if not 0 < wait_s <= MAX_TIMEOUT_S:
            raise ValueError(f"wait_s: must be in (0, {MAX_TIMEOUT_S:g}] seconds")

        def start(node_: Node, now: float) -> QueryStream:
            self.admit(now)
            qid = node_.query(
                now, name, payload, node=node, tags=tags, ack=ack, timeout=wait_s, relay=relay
            )
            return self.open(qid, now + wait_s)  # before any answer is drained

        return await core.call(start)

    def open(self, qid: int, deadline: float) -> QueryStream:
        stream = QueryStream(self, qid, deadline)
        self._open[qid] = stream
        return stream

    def forget(self, qid: int) -> None:
        self._open.pop(qid, None)

    def answered(self, answer: o.QueryAnswered) -> bool:
        """Hand `answer` to its asker; False if nobody waits for it any more."""
        stream = self._open.get(answer.qid)
        if stream is None:
            return False
        try:
            stream._send.send_nowait(answer)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            return False
        return True


async def collect(stream: QueryStream) -> list[o.QueryAnswered]:
    """Every ack and answer of `stream` until its deadline; the stream is closed."""
    answers = []
    try:
        while (answer := await stream.next()) is not None:
            answers.append(answer)
    finally:
        stream.close()
    return answers
