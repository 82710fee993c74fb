"""The membership's streams (push-pull, fallback pings) on the stream channel "member".

Rules:
- A peer's request on the channel is answered by the Node, in the core task;
  None closes the stream.
- A stream the Node asks for (OpenStream) runs in its own task, bounded by
  the Node's timeout; the reply, or why there was none (the stream's error,
  or "no_reply"), goes back to the Node in the core task.
"""

from __future__ import annotations

from gossip.core.membership import outputs as o
from gossip.core.types import Address
from gossip.runtime.coretask import CoreTask
from gossip.runtime.service import StreamError
from gossip.runtime.streams import StreamChannels

MEMBER_CHANNEL = "member"


class MemberStreams:
    def __init__(self, core: CoreTask, streams: StreamChannels) -> None:
        self._core = core
        self._streams = streams

    async def answer(self, src: Address, body: bytes) -> bytes | None:
        return await self._core.call(lambda node, now: node.handle_stream_request(now, src, body))

    async def open(self, out: o.OpenStream) -> None:
        call = self._core.call
        try:
            reply = await self._streams.request(out.to, MEMBER_CHANNEL, out.payload, out.timeout)
        except StreamError as exc:
            reason = exc.reason
            await call(lambda node, now: node.stream_failed(now, out.stream_id, reason))
            return
        if reply is None:
            await call(lambda node, now: node.stream_failed(now, out.stream_id, "no_reply"))
        else:
            await call(lambda node, now: node.receive_stream_response(now, out.stream_id, reply))
