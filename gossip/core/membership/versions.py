"""Protocol versions: which ranges members speak, and which version to send.

Rules:
- A node speaks every version in [cfg.protocol_min, cfg.protocol_max]. It
  advertises that range in the member tag `pv` ("1-2"); a member without the
  tag speaks [1, 1], so a node of the default range adds no tag at all (its
  packets are unchanged from before versions existed).
- The cluster speaks the highest version that every live (alive or suspect)
  member's range includes, as far as this node knows: the smallest maximum.
  Views only lag (a restart with a wider range is learned later), so a node
  may speak too low for a while, never too high for a member it knows.
- Until it knows another live member, a node speaks its own minimum: its
  join must be understood by a cluster it knows nothing about yet.
- A member whose range does not overlap ours is refused: left out of the
  choice and reported once per advertised range (ProtocolRefused).
- Decoding accepts every version in our own range; replies on a stream use
  the version the request came in (both sides speak it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from gossip.core.membership import outputs as out
from gossip.core.membership.config import PROTOCOL_VERSIONS
from gossip.core.membership.members import ALIVE, SUSPECT

TAG = "pv"
"""The member tag holding a node's range, "min-max"."""
BASE_RANGE = (1, 1)
"""The range of a member that advertises none."""
_MAX_TAG_CHARS = 11
_LIVE = {ALIVE, SUSPECT}

Range = tuple[int, int]


def format_range(r: Range) -> str:
    return f"{r[0]}-{r[1]}"


def parse_range(text: str) -> Range | None:
    """The range in a `pv` tag, or None if it is not "min-max" with
    1 <= min <= max <= the largest version this build knows of."""
    if len(text) > _MAX_TAG_CHARS:
        return None
    lo, sep, hi = text.partition("-")
    if not sep or not lo.isdigit() or not hi.isdigit():
        return None
    r = (int(lo), int(hi))
    return r if 1 <= r[0] <= r[1] <= 2**16 else None


def member_range(tags: Mapping[str, str]) -> Range | None:
    """The range a member advertises (BASE_RANGE without a tag; None if bad)."""
    text = tags.get(TAG)
    return BASE_RANGE if text is None else parse_range(text)


def advertised(tags: Mapping[str, str], own: Range) -> dict[str, str]:
    """`tags` with our range in `pv` (or without `pv` for the base range)."""
    result = {k: v for k, v in tags.items() if k != TAG}
    if own != BASE_RANGE:
        result[TAG] = format_range(own)
    return result


def overlaps(a: Range, b: Range) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


class VersionChooser:
    """Tracks the ranges of the live members from the node's membership
    outputs and picks the version to speak. Counting the range bounds keeps
    every update O(1) however large the cluster."""

    def __init__(self, name: str, own: Range) -> None:
        if not (PROTOCOL_VERSIONS[0] <= own[0] <= own[1] <= PROTOCOL_VERSIONS[-1]):
            raise ValueError(f"protocol range {format_range(own)} is not supported")
        self.name = name
        self.own = own
        self._ranges: dict[str, Range] = {}
        self._highs: Counter[int] = Counter()
        self._refused: set[tuple[str, Range | None]] = set()
        self.speaking = own[0]

    def observe(self, outbox: list[out.Output]) -> bool:
        """Fold the membership outputs in `outbox` (appending a ProtocolRefused
        for each member newly refused); True when the version to speak changed."""
        seen = False
        for o in list(outbox):
            match o:
                case out.MemberJoined() | out.MemberUpdated() | out.MemberRecovered():
                    info = o.member
                    if info.name != self.name and info.state in _LIVE:
                        self._admit(info.name, info.address, member_range(info.tags), outbox)
                        seen = True
                case out.MemberFailed() | out.MemberLeft():
                    self._drop(o.member.name)
                    seen = True
                case out.MemberReaped():
                    self._drop(o.name)
                    seen = True
        if not seen:
            return False
        before = self.speaking
        self.speaking = min(self._highs) if self._highs else self.own[0]
        return self.speaking != before

    def _admit(
        self, name: str, address: tuple[str, int], r: Range | None, outbox: list[out.Output]
    ) -> None:
        self._drop(name)
        if r is not None and overlaps(r, self.own):
            self._ranges[name] = r
            self._highs[min(r[1], self.own[1])] += 1
            return
        if (name, r) not in self._refused:
            self._refused.add((name, r))
            theirs = r if r is not None else (0, 0)
            outbox.append(out.ProtocolRefused(name, address, theirs, self.own))

    def _drop(self, name: str) -> None:
        r = self._ranges.pop(name, None)
        if r is not None:
            high = min(r[1], self.own[1])
            self._highs[high] -= 1
            if not self._highs[high]:
                del self._highs[high]
