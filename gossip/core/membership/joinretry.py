"""When a node tries its seeds again: the one join-retry policy.

Rules:
- Until a first join succeeds, the seeds are tried again after
  min(JOIN_RETRY_MIN * 2^attempt, cap) seconds (cap: the reconnect interval),
  times a jitter in [1, 1.5) drawn from the node's injected rng, so nodes
  started together spread out. Retrying stops once joined or leaving.
- Once joined, a node with no other live member tries its seeds again at its
  reconnect tick (pushpull.py), as it does a seed outside its cluster.
- Seeds given as names are resolved again before each of those tries: the
  node asks its shell with ResolveSeeds and joins what `set_seeds` returns
  (DNS may change while a node waits). The shell only resolves.
"""

from __future__ import annotations

from random import Random

JOIN_RETRY_MIN = 1.0
"""Seconds before the first retry of a failed join."""
_MAX_DOUBLINGS = 32
"""Beyond this many doublings the cap has long been reached."""


def join_retry_delay(attempt: int, cap: float, rng: Random) -> float:
    """Seconds before join retry number `attempt` + 1 (attempt 0 is the join
    at start), jittered: one rng draw."""
    backoff = JOIN_RETRY_MIN * (1 << min(attempt, _MAX_DOUBLINGS))
    return min(backoff, cap) * rng.uniform(1.0, 1.5)


def join_retry_wanted(*, joined: bool, leaving: bool) -> bool:
    """Whether a pending join retry still runs."""
    return not joined and not leaving
