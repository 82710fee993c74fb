"""Lifeguard's pure rules: the dynamic suspicion timeout and the local health score.

Rules (Lifeguard, as in memberlist):
- The shortest suspicion timeout is SuspicionMult x max(1, log10 N) x probe
  interval; the longest is SuspicionMaxTimeoutMult times that.
- A suspicion starts at the longest timeout and shrinks logarithmically towards
  the shortest as independent confirmations arrive from other members:
  timeout(c) = max - (max - min) x log(c + 1) / log(k + 1), never below min,
  where k = SuspicionMult - 2 confirmations are expected (0 in clusters too
  small to supply them, which makes the timeout the minimum at once).
- The local health score (0..max) rises when this node misses acks, misses
  the nacks its indirect helpers owe it, has to refute a suspicion of itself,
  or its event loop stalls for at least a probe timeout (by one, plus one per
  probe interval the stall lasted); it falls by one on every successful probe.
  Probe interval and probe timeout are multiplied by (score + 1), so a slow
  node probes more patiently instead of accusing healthy peers.
"""

from __future__ import annotations

import math


def suspicion_min_timeout(suspicion_mult: int, n_members: int, probe_interval: float) -> float:
    """SuspicionMult x max(1, log10 N) x probe interval."""
    scale = max(1.0, math.log10(max(1, n_members)))
    return suspicion_mult * scale * probe_interval


def expected_confirmations(suspicion_mult: int, n_members: int) -> int:
    """k: how many independent suspicions shrink the timeout to its minimum."""
    k = suspicion_mult - 2
    # The suspect and this node cannot confirm; without enough others expect none.
    return 0 if n_members - 2 < k else max(0, k)


def suspicion_timeout(min_s: float, max_s: float, k: int, confirmations: int) -> float:
    """The current timeout of a suspicion with `confirmations` independent accusers."""
    if k < 1:
        return min_s
    frac = math.log(confirmations + 1) / math.log(k + 1)
    return max(min_s, max_s - frac * (max_s - min_s))


def stall_penalty(lag_s: float, probe_timeout: float, probe_interval: float) -> int:
    """How far a stall of `lag_s` seconds raises the health score.

    Shorter than a probe timeout, every ack could still be read in time: 0.
    Longer, this node is slow right now: 1, plus 1 for every probe interval
    the stall lasted (the rounds it could not have judged fairly).
    """
    if lag_s < probe_timeout:
        return 0
    return 1 + int(lag_s // probe_interval)


class Health:
    """The local health score (Lifeguard's "awareness"), clamped to 0..max_score."""

    __slots__ = ("max_score", "score")

    def __init__(self, max_score: int) -> None:
        self.max_score = max_score
        self.score = 0

    def apply(self, delta: int) -> bool:
        """Add `delta`, clamped; True when the score changed."""
        new = min(self.max_score, max(0, self.score + delta))
        changed = new != self.score
        self.score = new
        return changed

    def scale(self, seconds: float) -> float:
        """A probe interval or timeout stretched by the current score."""
        return seconds * (self.score + 1)
