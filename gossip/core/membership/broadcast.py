"""The transmit-limited broadcast queue of membership updates.

Rules (memberlist's TransmitLimitedQueue):
- One pending update per member: a newer update about the same member
  replaces (invalidates) the older one.
- Each update is sent at most `limit` times (RetransmitMult x ceil(log10(N+1)),
  at least GossipNodes: Config.retransmit_limit, computed by the caller), then
  dropped.
- When filling a packet, updates sent the fewest times go first, and among
  those the most recently queued first: never-sent updates newest first, so
  fresh news spreads before old news is repeated. (Among updates already sent,
  the order is by when they last entered their send-count tier, which keeps
  filling a packet O(items taken) instead of re-sorting.)
- Updates are stored already encoded, so filling a packet is concatenation and
  the packet size is exact; an update that does not fit is left for later.
- Under a backlog (more pending bytes than `backlog_bytes`, a few packets'
  worth), a copy of a pending update received from another node counts as
  one of its transmissions: it is evidently spreading without us ("counter"
  rumor mongering, Demers et al. 1987). When a thousand nodes join at once
  this shortens the flood of join updates (each is received about as often
  as it is sent, so it ends after roughly half its count); below the backlog
  every update is sent its full count, as in memberlist. An update queued
  without an `ident` (a node's news about itself) is never retired this way.
"""

from __future__ import annotations

MIN_UPDATE_BYTES = 8
"""No encoded update is smaller; below this much room a packet is full."""
MAX_MISSES = 16
"""Stop scanning after this many updates in a row that did not fit."""


class _Item:
    __slots__ = ("heard", "ident", "key", "live", "payload", "size", "transmits")

    def __init__(self, key: str, payload: bytes, ident: bytes | None) -> None:
        self.key = key
        self.payload = payload
        self.ident = ident
        self.size = len(payload)
        self.transmits = 0
        self.heard = 0
        self.live = True


class BroadcastQueue:
    def __init__(self, backlog_bytes: int = 1 << 62) -> None:
        self.backlog_bytes = backlog_bytes
        self.pending_bytes = 0
        """Total size of the pending updates."""
        self._by_key: dict[str, _Item] = {}
        self._by_ident: dict[bytes, _Item] = {}
        # tiers[t] is a stack of the items sent t times, last entered on top.
        # A replaced item stays behind as a stale entry (not live) until a
        # scan passes it or the tiers are compacted.
        self._tiers: list[list[_Item]] = [[]]
        self._entries = 0
        # A lower bound on every live update's size (the smallest ever queued).
        self._smallest = 1 << 30

    def __len__(self) -> int:
        return len(self._by_key)

    def enqueue(self, key: str, payload: bytes, ident: bytes | None = None) -> None:
        """Queue `payload` (replacing any pending update about `key`); `ident`
        is how copies received from others are recognised (see heard()), and
        without one they are not."""
        old = self._by_key.get(key)
        if old is not None:
            self._retire(old)
        item = _Item(key, payload, ident)
        if item.size < self._smallest:
            self._smallest = item.size
        self._by_key[key] = item
        if ident is not None:
            self._by_ident[ident] = item
        self.pending_bytes += item.size
        self._tiers[0].append(item)
        self._entries += 1
        if self._entries > 2 * len(self._by_key) + 64:
            self._compact()

    @property
    def backlogged(self) -> bool:
        return self.pending_bytes > self.backlog_bytes

    def heard(self, idents: list[bytes]) -> None:
        """Copies of these updates arrived from other nodes: under a backlog,
        each counts as one transmission of ours."""
        if not self.backlogged:
            return
        get = self._by_ident.get
        for ident in idents:
            item = get(ident)
            if item is not None:
                item.heard += 1

    def _retire(self, item: _Item) -> None:
        item.live = False
        del self._by_key[item.key]
        if item.ident is not None:
            del self._by_ident[item.ident]
        self.pending_bytes -= item.size

    def pending(self, key: str, payload: bytes) -> bool:
        """True while this exact update is still queued."""
        item = self._by_key.get(key)
        return item is not None and item.payload == payload

    def take(self, room: int, limit: int) -> list[bytes]:
        """Encoded updates filling at most `room` bytes; each counts one transmit."""
        if not self._by_key:
            return []
        picked: list[_Item] = []
        misses = 0
        # Hot path (once per packet sent): locals, and the size kept on the item.
        floor = max(MIN_UPDATE_BYTES, self._smallest)
        for tier in self._tiers:
            # Scan down from the top; the scanned part is rewritten without
            # the picked and stale entries, so each entry is scanned once.
            i = len(tier)
            kept: list[_Item] = []
            while i > 0 and room >= floor and misses < MAX_MISSES:
                i -= 1
                item = tier[i]
                if not item.live:
                    continue
                if item.heard and item.transmits + item.heard >= limit:
                    self._retire(item)  # spread enough without us
                    continue
                size = item.size
                if size > room:
                    misses += 1
                    kept.append(item)
                    continue
                picked.append(item)
                room -= size
                misses = 0
            self._entries -= len(tier) - i - len(kept)
            if kept:
                del tier[i:]
                kept.reverse()
                tier.extend(kept)
            else:
                del tier[i:]
            # Below the smallest update ever queued nothing more can fit: every
            # further entry would be a miss, so stopping picks the same updates.
            if room < floor or misses >= MAX_MISSES:
                break
        tiers = self._tiers
        # Re-file in reverse, so the next tier's stack yields this batch in
        # the order it was just picked.
        for item in reversed(picked):
            t = item.transmits + 1
            item.transmits = t
            if t + item.heard >= limit:
                self._retire(item)
                continue
            if t == len(tiers):
                tiers.append([])
            tiers[t].append(item)
            self._entries += 1
        return [item.payload for item in picked]

    def _compact(self) -> None:
        self._tiers = [[item for item in tier if item.live] for tier in self._tiers]
        self._entries = sum(len(tier) for tier in self._tiers)
