"""Client sessions: a client's later write outranks its earlier ones, whatever the clocks.

Rules:
- A write answer names the write's version as "WALL.COUNTER@NODE". A client that passes
  the greatest version it has seen as `after` (PUT or DELETE ?after=VERSION, or the
  library's `after=`) gets its write stamped above that version by whichever agent
  coordinates it, so last-writer-wins orders the client's own writes as it made them,
  even across agents whose store clocks differ.
- parse_after reads that text: at most MAX_AFTER_CHARS, a decimal WALL and COUNTER within
  a version's bounds, then optionally "@" and any node name (ignored: a stamp above
  (WALL, COUNTER) is above every node's). Anything else is SessionError (a 400).
- A version more than the max clock offset ahead of the coordinator's store clock is
  refused with AfterAhead (a 503, like a clock disagreement): every replica would refuse
  a stamp above it as implausible.
"""

from __future__ import annotations

from gossip.core.store.hlc import MAX_COUNTER, MAX_WALL_MS

MAX_AFTER_CHARS = 300
_MAX_DIGITS = len(str(MAX_WALL_MS))

After = tuple[int, int]
"""(wall_ms, counter) of the greatest version a client has seen."""


class SessionError(ValueError):
    pass


class AfterAhead(Exception):
    """`after` names a version too far ahead of this agent's store clock to stamp above."""

    def __init__(self, after: After) -> None:
        super().__init__(
            f"after={after[0]}.{after[1]} is more than the max clock offset ahead of this"
            " agent's store clock; retry later or through another agent"
        )
        self.after = after


def _number(text: str, limit: int, what: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS):
        raise SessionError(f"after: {what} is not a decimal number")
    value = int(text)
    if value > limit:
        raise SessionError(f"after: {what} is above {limit}")
    return value


def parse_after(text: str | None) -> After | None:
    """The (wall, counter) of an `after` parameter; None when it is absent."""
    if text is None:
        return None
    if len(text) > MAX_AFTER_CHARS:
        raise SessionError(f"after is longer than {MAX_AFTER_CHARS} characters")
    version = text.split("@", 1)[0]
    wall, dot, counter = version.partition(".")
    if not dot:
        raise SessionError("after must be a version as a write answers it: WALL.COUNTER[@NODE]")
    return _number(wall, MAX_WALL_MS, "the wall time"), _number(counter, MAX_COUNTER, "the counter")


def after_text(after: After) -> str:
    """The `after` parameter for a version (the node part left out)."""
    return f"{after[0]}.{after[1]}"
