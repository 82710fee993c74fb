"""Fencing tokens: issued per acquisition, above every token this node has heard of for the item.

Rules:
- A token is max(last token issued here + 1, wall_ms, highest token heard for the item + 1):
  on one node tokens always rise; across nodes the wall clock orders them, and a token heard
  of (a predecessor's hand-over note) orders them even when the clocks do not.
- A token is heard of through a note: the node that releases an item tells the successor the
  token it held (see assignment.TokenNote). Heard tokens are kept only for items not held
  here, at most `limit` of them (the oldest go first); an acquisition consumes the item's.
- Each heard token is passed on at most once per recipient (`to_tell`), so notes between
  nodes whose tables disagree stop instead of bouncing.
- A token this node releases an item with is kept like a heard one, told to the successor
  (`handed_over`): if this node's table later names another owner (the one a relaying node
  was to tell went down with the note, or came back from a split), that owner is told too.
- After a restart the shell restores the tokens this node issued before (kept in its data
  directory): the counter starts above all of them and each counts as heard, so neither a
  wall clock stepped back nor a takeover elsewhere issues a token below one issued before.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

MAX_HEARD = 1 << 17
"""Heard tokens kept for items not held here (above MAX_ITEMS, so declared items all fit)."""


class Fencing:
    """The token counter of one node and the tokens it has heard of for items it does not hold."""

    def __init__(self, limit: int = MAX_HEARD) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.last = 0
        self._limit = limit
        self._heard: dict[str, int] = {}
        self._told: dict[str, str] = {}

    def issue(self, item: str, wall_ms: int) -> int:
        """A new token for `item`, above everything issued here and heard of for it."""
        heard = self._heard.pop(item, 0)
        self._told.pop(item, None)
        self.last = max(self.last + 1, wall_ms, heard + 1)
        return self.last

    def restore(self, issued: Mapping[str, int]) -> None:
        """Tokens issued here before a restart: the counter goes above them, each is heard."""
        for item, token in sorted(issued.items(), key=lambda pair: pair[1]):
            self.last = max(self.last, token)
            self.hear(item, token)

    def hear(self, item: str, token: int) -> bool:
        """Remember that `token` was issued for `item` elsewhere; whether it raised what we knew."""
        if token <= self._heard.get(item, 0):
            return False
        self._heard.pop(item, None)  # re-inserted last: the newest is evicted last
        self._heard[item] = token
        self._told.pop(item, None)
        while len(self._heard) > self._limit:
            oldest = next(iter(self._heard))
            del self._heard[oldest]
            self._told.pop(oldest, None)
        return True

    def handed_over(self, item: str, token: int, successor: str) -> None:
        """This node released `item` with `token` and told `successor` so."""
        self.hear(item, token)
        if self._heard.get(item) == token:
            self._told[item] = successor

    def heard(self, item: str) -> int | None:
        return self._heard.get(item)

    def heard_items(self) -> Iterator[str]:
        return iter(list(self._heard))

    def to_tell(self, item: str, member: str) -> int | None:
        """The heard token for `item` if `member` has not been told it yet (then it counts as
        told); None otherwise."""
        token = self._heard.get(item)
        if token is None or self._told.get(item) == member:
            return None
        self._told[item] = member
        return token
