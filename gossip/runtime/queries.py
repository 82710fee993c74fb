"""The agent's side of queries: routing acks and answers to whoever asked.

Rules: a query started here gets a bounded channel (MAX_ANSWERS); the core
task puts each QueryAnswered on it without blocking (a full or closed one
drops the answer, counted by the caller), and the asker reads until the
query's deadline with QueryStream.next(). Closing forgets the query.
"""

from __future__ import annotations

import trio

from gossip.core.membership import outputs as o

MAX_ANSWERS = 4096
MAX_TIMEOUT_S = 300.0


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
    def __init__(self) -> None:
        self._open: dict[int, QueryStream] = {}

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
