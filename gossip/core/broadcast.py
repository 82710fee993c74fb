"""The transmit-limited broadcast queue of membership updates.

Rules (memberlist's TransmitLimitedQueue):
- One pending update per member: a newer update about the same member
  replaces (invalidates) the older one.
- Each update is sent at most `limit` times (RetransmitMult x ceil(log10(N+1)),
  computed by the caller), then dropped.
- When filling a packet, updates sent the fewest times go first, and among
  those the newest first, so fresh news spreads before old news is repeated.
- Updates are stored already encoded, so filling a packet is concatenation and
  the packet size is exact; an update that does not fit is left for later.
"""

from __future__ import annotations

MIN_UPDATE_BYTES = 8
"""No encoded update is smaller; below this much room a packet is full."""
MAX_MISSES = 16
"""Stop scanning after this many updates in a row that did not fit."""


class _Item:
    __slots__ = ("id", "key", "payload", "transmits")

    def __init__(self, key: str, payload: bytes, item_id: int) -> None:
        self.key = key
        self.payload = payload
        self.id = item_id
        self.transmits = 0


class BroadcastQueue:
    def __init__(self) -> None:
        self._by_key: dict[str, _Item] = {}
        # tiers[t] holds the items sent t times, ordered by id (= age) unless
        # the tier is in `_unsorted`, in which case it is re-sorted before use.
        self._tiers: list[dict[int, _Item]] = []
        self._unsorted: set[int] = set()
        self._next_id = 0

    def __len__(self) -> int:
        return len(self._by_key)

    def enqueue(self, key: str, payload: bytes) -> None:
        old = self._by_key.pop(key, None)
        if old is not None:
            del self._tiers[old.transmits][old.id]
        self._next_id += 1
        item = _Item(key, payload, self._next_id)
        self._by_key[key] = item
        if not self._tiers:
            self._tiers.append({})
        self._tiers[0][item.id] = item

    def pending(self, key: str, payload: bytes) -> bool:
        """True while this exact update is still queued."""
        item = self._by_key.get(key)
        return item is not None and item.payload == payload

    def take(self, room: int, limit: int) -> list[bytes]:
        """Encoded updates filling at most `room` bytes; each counts one transmit."""
        picked: list[_Item] = []
        misses = 0
        for t, tier in enumerate(self._tiers):
            if room < MIN_UPDATE_BYTES or misses >= MAX_MISSES:
                break
            if t in self._unsorted:
                self._unsorted.discard(t)
                tier = self._tiers[t] = dict(sorted(tier.items()))
            for item in reversed(tier.values()):
                size = len(item.payload)
                if size <= room:
                    picked.append(item)
                    room -= size
                    misses = 0
                    if room < MIN_UPDATE_BYTES:
                        break
                else:
                    misses += 1
                    if misses >= MAX_MISSES:
                        break
        tiers = self._tiers
        # Oldest first, so that a tier receiving a run of items stays sorted.
        for item in sorted(picked, key=_by_id):
            del tiers[item.transmits][item.id]
            item.transmits += 1
            if item.transmits >= limit:
                del self._by_key[item.key]
                continue
            if item.transmits == len(tiers):
                tiers.append({})
            tier = tiers[item.transmits]
            if tier and next(reversed(tier)) > item.id:
                self._unsorted.add(item.transmits)
            tier[item.id] = item
        return [item.payload for item in picked]


def _by_id(item: _Item) -> int:
    return item.id
