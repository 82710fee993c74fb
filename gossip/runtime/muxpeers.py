"""Which peer addresses are known to serve multiplexed connections.

Rules: an address is learned from the peer itself (the offer that follows its
one-exchange answers, muxframes.py) and forgotten when a multiplexed
connection to it is refused (the peer was restarted with an older build). At
most `limit` addresses are kept, the least recently learned or used dropped
first: a forgotten peer costs one more one-exchange connection, never an error.
"""

from __future__ import annotations

from collections import OrderedDict

from gossip.core.types import Address

MAX_PEERS = 4096


class MuxPeers:
    def __init__(self, limit: int = MAX_PEERS) -> None:
        self._limit = limit
        self._known: OrderedDict[Address, None] = OrderedDict()

    def __contains__(self, address: Address) -> bool:
        if address not in self._known:
            return False
        self._known.move_to_end(address)
        return True

    def learn(self, address: Address) -> None:
        self._known[address] = None
        self._known.move_to_end(address)
        while len(self._known) > self._limit:
            self._known.popitem(last=False)

    def forget(self, address: Address) -> None:
        self._known.pop(address, None)
