"""Outgoing stream requests: every failure is a StreamError, never an escape."""

from __future__ import annotations

import pytest
import trio

from gossip.core.types import Address
from gossip.runtime.metrics import Counter
from gossip.runtime.network import StreamServer
from gossip.runtime.service import StreamError
from gossip.runtime.streams import StreamChannels
from gossip.security.sealing import PlainSealer


class _NeverAnswers:
    """A network whose connects hang, as a peer that never answers."""

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
        await trio.sleep_forever()
        raise AssertionError("unreachable")


def _channels() -> StreamChannels:
    return StreamChannels(
        _NeverAnswers(),  # type: ignore[arg-type]
        PlainSealer,
        {},
        max_bytes=1 << 16,
        timeout=5.0,
        streams=Counter("streams_total", "Streams.", ["channel", "direction"]),
        rejected=Counter("rejected_total", "Rejected.", ["reason"]),
    )


@pytest.mark.parametrize("limit", [-3.5, 0.0])
async def test_a_request_whose_deadline_already_passed_times_out_cleanly(limit: float) -> None:
    # A node resumed after SIGSTOP asks for streams whose deadlines lie in the past.
    with pytest.raises(StreamError) as caught:
        await _channels().request(("127.0.0.1", 9), "member", b"ping", limit)
    assert caught.value.reason == "timeout"
