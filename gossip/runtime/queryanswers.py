"""Large query answers over the stream channels (core/membership/queryanswer.py).

Rules: an answer larger than the node's query_reply_room goes to the query's
origin as one request on the QUERY_CHANNEL stream channel (StreamChannels, so
whatever carries streams carries it); at most MAX_ANSWER_BYTES, a larger one
is refused with ValueError naming the limit. A failed delivery is logged as
query_answer_failed and counted; the responder carries on. An answer to
the agent's own query is handed to its core directly. The origin decodes
the body within bounds and hands the answer to its core; a bad body is
counted by reason and the stream answered with nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog

from gossip.core.membership.messages import QueryReply
from gossip.core.membership.queryanswer import MAX_ANSWER_BYTES, decode_answer, encode_answer
from gossip.core.membership.wireschema import WireError
from gossip.core.types import Address
from gossip.hostport import format_hostport
from gossip.runtime.metrics import Registry
from gossip.runtime.service import StreamError

QUERY_CHANNEL = "query"

__all__ = ["MAX_ANSWER_BYTES", "QUERY_CHANNEL", "AnswerStreams"]

Request = Callable[[Address, str, bytes], Awaitable[bytes | None]]
Deliver = Callable[[QueryReply], Awaitable[None]]

log = structlog.get_logger("gossip.queries")


class AnswerStreams:
    def __init__(
        self,
        name: str,
        own: Callable[[], Address],
        max_name_bytes: int,
        request: Request,
        deliver: Deliver,
        metrics: Registry,
    ) -> None:
        self._name = name
        self._own = own
        self._max_name = max_name_bytes
        self._request = request
        self._deliver = deliver
        self._answers = metrics.counter(
            "query_stream_answers_total",
            "Query answers too large for a datagram, sent or received over a stream.",
            ("direction", "result"),
        )

    async def send(self, to: Address, qid: int, payload: bytes) -> None:
        """Send an answer to query `qid` to its origin `to` (ValueError if too large)."""
        body = encode_answer(qid, self._name, payload)
        if to == self._own():  # our own query: no stream needed
            await self._deliver(QueryReply(qid, self._name, False, payload))
            return
        try:
            await self._request(to, QUERY_CHANNEL, body)
        except StreamError as exc:
            self._answers.inc(labels={"direction": "out", "result": "failed"})
            log.warning(
                "query_answer_failed", qid=qid, origin=format_hostport(*to), reason=exc.reason
            )
            return
        self._answers.inc(labels={"direction": "out", "result": "ok"})

    async def receive(self, src: Address, body: bytes) -> bytes | None:
        """The QUERY_CHANNEL stream handler of the origin."""
        try:
            reply = decode_answer(body, self._max_name)
        except WireError as exc:
            self._answers.inc(labels={"direction": "in", "result": exc.reason})
            return None
        self._answers.inc(labels={"direction": "in", "result": "ok"})
        await self._deliver(reply)
        return None
