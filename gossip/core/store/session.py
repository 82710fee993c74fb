"""A client's session version: the greatest store version it has seen, passed back as `after`.

Rules: versions travel as their text, `wall_ms.counter@node` (routes.version_text). A write
that carries one is stamped above it (coordinator.py), so a client's later write wins over
its earlier ones whatever the clocks of the agents they went through. Parsing is bounded:
at most MAX_TEXT bytes, wall and counter plain decimal integers within the record's ranges;
anything else is a SessionError naming what is wrong.
"""

from __future__ import annotations

from gossip.core.store.hlc import Timestamp

MAX_TEXT = 300
MAX_WALL = (1 << 63) - 1
MAX_COUNTER = (1 << 32) - 1


class SessionError(ValueError):
    pass


def parse_version(text: str) -> Timestamp:
    """`wall_ms.counter@node` as a Timestamp; SessionError if it is not one."""
    if len(text.encode()) > MAX_TEXT:
        raise SessionError(f"a version is at most {MAX_TEXT} bytes")
    stamp, at, node = text.partition("@")
    wall, dot, counter = stamp.partition(".")
    if not (at and dot and wall.isdigit() and counter.isdigit() and wall.isascii()):
        raise SessionError("a version looks like WALL_MS.COUNTER@NODE")
    if not counter.isascii() or int(wall) > MAX_WALL or int(counter) > MAX_COUNTER:
        raise SessionError("a version's wall time or counter is out of range")
    return Timestamp(int(wall), int(counter), node)


def greater(seen: str | None, new: str) -> str:
    """The later of the session's version text and a new one (an unreadable one is ignored)."""
    if seen is None:
        return new
    try:
        return new if parse_version(new) > parse_version(seen) else seen
    except SessionError:
        return seen
