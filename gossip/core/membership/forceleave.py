"""Force-leave: an operator's verdict on a member the protocol has failed.

Rules:
- Only a member this node holds as dead (failed) may be forced to `left`. An
  alive or suspect member is refused: its probes and its own refutation are
  still deciding, and a force would race them. This node itself is refused
  too (it leaves with leave()). Forcing a member already left is a no-op.
- Forcing is a Left at the member's own incarnation: left outranks dead at
  equal incarnation, so it spreads as any leave does; a member that is in
  fact alive hears it and refutes with a higher incarnation.
- A prune forgets the member (dead or left) in every table right away instead
  of at the reap time: Prune(name, inc) removes it wherever it is held at
  `inc` or lower, whatever its state there; a member back alive since, at a
  higher incarnation, is kept.
"""

from __future__ import annotations

from gossip.core.membership.members import DEAD, LEFT
from gossip.core.types import MemberInfo


def refusal(me: str, name: str, cur: MemberInfo | None, prune: bool) -> str | None:
    """Why `name` (held as `cur`) may not be forced out, or None when it may."""
    if name == me:
        return "this is the agent itself: use leave"
    if cur is None:
        return f"no member named {name!r}"
    if cur.state == DEAD or cur.state == LEFT:
        return None
    return f"{name} is {cur.state.label}: only a failed member may be forced to leave"


def needs_left(cur: MemberInfo) -> bool:
    """A forced member still to be marked left (a left one already is)."""
    return cur.state == DEAD


def prune_applies(cur: MemberInfo | None, incarnation: int) -> bool:
    """A Prune at `incarnation` removes `cur` (nothing newer is known of it)."""
    return cur is not None and cur.incarnation <= incarnation
