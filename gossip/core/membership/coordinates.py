"""The node's network coordinates: its own, learned from probe round trips,
and the last one each peer sent (vivaldi.py holds the math).

Rules:
- Off unless cfg.coordinates: then nothing is sent or kept, and no packet
  changes.
- A node sends its coordinate right after every ack it sends, in the same
  packet (CoordinateMsg), and keeps the last one each peer sent it.
- Only a direct probe's round trip is a sample (an ack relayed by a helper or
  over the fallback stream also measures someone else). It waits for the
  coordinate that follows its ack, so each sample pairs a round trip with
  the coordinate the peer held when it answered. A sample moves our
  coordinate through a per-peer median of its last three round trips (one
  delayed ack does not throw the coordinate off), then the adjustment window
  and gravity, as in Serf.
- The core reads no clock: a round trip is the difference of two `now`
  inputs. Randomness (a direction for coincident points) comes from an rng
  seeded with the node's name, never the node's own rng, so turning
  coordinates on leaves every other random choice as it was.
- Bounded: one filter and one coordinate per peer, pruned to the members
  the node knows whenever they outgrow it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

from gossip.core.membership import vivaldi
from gossip.core.membership.messages import CoordinateMsg
from gossip.core.membership.vivaldi import Coordinate
from gossip.core.membership.wire import encode_message, wrap

FILTER_SIZE = 3
_MICRO = 1e6


def to_message(name: str, c: Coordinate) -> CoordinateMsg:
    return CoordinateMsg(
        name,
        tuple(round(x * _MICRO) for x in c.vec),
        round(c.height * _MICRO),
        round(c.error * _MICRO),
        round(c.adjustment * _MICRO),
    )


def from_message(m: CoordinateMsg) -> Coordinate:
    return Coordinate(
        tuple(x / _MICRO for x in m.vec_us),
        m.error_ppm / _MICRO,
        m.adjustment_us / _MICRO,
        m.height_us / _MICRO,
    )


class Coordinates:
    def __init__(self, name: str, enabled: bool, known: Callable[[], Iterable[str]]) -> None:
        self.name = name
        self.enabled = enabled
        self._known = known
        self._rng = random.Random(f"vivaldi/{name}")
        self.own = Coordinate.origin()
        self._residuals = [0.0] * vivaldi.ADJUSTMENT_WINDOW
        self._residual_at = 0
        self._rtts: dict[str, list[float]] = {}
        self._awaiting: dict[str, float] = {}
        """Round trips of acks whose coordinate has not been read yet."""
        self._peers: dict[str, Coordinate] = {}
        self._part = b""
        self._prune_at = 64
        self.samples = 0

    def part(self) -> bytes:
        """Our coordinate as a wrapped message to put in a packet (b"" when off)."""
        if self.enabled and not self._part:
            self._part = wrap(encode_message(to_message(self.name, self.own)))
        return self._part

    def of(self, name: str) -> Coordinate | None:
        """The last coordinate `name` sent (ours for our own name)."""
        return self.own if name == self.name else self._peers.get(name)

    def heard(self, msg: CoordinateMsg) -> None:
        """A peer's coordinate arrived (right after its ack)."""
        if not self.enabled or msg.name == self.name:
            return
        coord = from_message(msg)
        rtt = self._awaiting.pop(msg.name, None)
        if len(coord.vec) == len(self.own.vec):
            self._peers[msg.name] = coord
            if rtt is not None:
                self._learn(msg.name, coord, rtt)
            self._prune()

    def sample(self, name: str, rtt: float) -> None:
        """A direct probe of `name` was acked after `rtt` seconds: learned
        from once its coordinate, next in the packet, is read."""
        if self.enabled:
            self._awaiting[name] = rtt

    def _learn(self, name: str, other: Coordinate, rtt: float) -> None:
        if not vivaldi.acceptable(self.own, other, rtt):
            return
        window = self._rtts.setdefault(name, [])
        window.append(rtt)
        del window[:-FILTER_SIZE]
        rtt = _median(window)
        c = vivaldi.vivaldi_step(self.own, other, rtt, self._rng)
        # The adjustment: the mean residual over the last samples, halved
        # since both ends of a path add theirs (Serf's updateAdjustment).
        self._residuals[self._residual_at] = rtt - vivaldi.raw_distance(c, other)
        self._residual_at = (self._residual_at + 1) % len(self._residuals)
        adjustment = sum(self._residuals) / (2 * len(self._residuals))
        c = Coordinate(c.vec, c.error, adjustment, c.height)
        c = vivaldi.gravity_step(c, self._rng)
        if c.is_valid():
            self.own = c
            self._part = b""
            self.samples += 1

    def _prune(self) -> None:
        """Forget peers no longer known, each time the table doubles (amortised O(1))."""
        if len(self._peers) <= self._prune_at:
            return
        known = set(self._known())
        self._peers = {n: c for n, c in self._peers.items() if n in known}
        self._rtts = {n: r for n, r in self._rtts.items() if n in known}
        self._awaiting = {n: r for n, r in self._awaiting.items() if n in known}
        self._prune_at = 2 * len(self._peers) + 64


def nearest(
    coords: Callable[[str], Coordinate | None], me: str, names: Iterable[str], n: int
) -> list[tuple[str, float]]:
    """Up to n of `names` (other than `me`) nearest `me` by estimated round
    trip, as (name, seconds), nearest first; names without a coordinate last
    are left out."""
    mine = coords(me)
    if mine is None:
        return []
    found = []
    for name in names:
        theirs = coords(name) if name != me else None
        if theirs is not None:
            found.append((name, vivaldi.estimate_rtt(mine, theirs)))
    found.sort(key=lambda pair: (pair[1], pair[0]))
    return found[: max(n, 0)]


def _median(values: list[float]) -> float:
    """The median of a short window (statistics.median, without the ~0.6 MiB of
    decimal and fractions that module loads into every agent)."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
