"""The agent's side of queries: routing acks and answers to whoever asked.

Rules: a query started here gets a bounded channel (MAX_ANSWERS); the core
task puts each QueryAnswered on it without blocking (a full or closed one
drops the answer, counted by the caller), and the asker reads until the
query's deadline with QueryStream.next(). Closing forgets the query.
The queries an agent originates are bounded: at most MAX_CONCURRENT open
at once, and a token bucket of RATE_BURST refilled at RATE_PER_S; admit()
refuses beyond either with QueryRefused (the API's 429), counted by reason.
"""

from __future__ import annotations

import trio

from gossip.core.membership import outputs as o
from gossip.core.membership.tokenbucket import TokenBucket
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
