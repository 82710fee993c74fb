"""The agent's side of queries: starting them, routing acks and answers to whoever asked.

Rules: a query started here gets a bounded channel (MAX_ANSWERS), opened in
the core task together with the query, before any answer can be drained; the
core task puts each QueryAnswered on it without blocking (a full or closed one
drops the answer, counted by the caller), and the asker reads until the
query's deadline with QueryStream.next(). Closing forgets the query. A query
the node refuses (size, filters, too many open), or one that would wait
longer than MAX_TIMEOUT_S, is refused with ValueError in the asker.
"""

from __future__ import annotations

from collections.abc import Mapping

import trio

from gossip.core.membership import outputs as o
from gossip.core.membership.node import Node
from gossip.runtime.coretask import CoreTask

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
    ) -> QueryStream:
        """Ask the members whose name and tags match these globs (in the core task)."""
        if not 0 < wait_s <= MAX_TIMEOUT_S:
            raise ValueError(f"wait_s: must be in (0, {MAX_TIMEOUT_S:g}] seconds")

        def start(node_: Node, now: float) -> QueryStream:
            qid = node_.query(now, name, payload, node=node, tags=tags, ack=ack, timeout=wait_s)
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
