"""Vivaldi network coordinates: the pure math, as Serf extends it.

A coordinate is a point in a low-dimensional Euclidean space plus a height
(the access link's latency, which every path to the node pays) and an
adjustment (the mean residual the space cannot express); the estimated round
trip between two nodes is the distance of their points plus both heights plus
both adjustments. Each node also keeps an error estimate: how far off its
coordinate may be, which weighs how far one sample moves it.

Rules: functions are pure and total on their documented inputs; the caller
measures round trips (from the `now` of its inputs) and passes them in.
A sample with a non-finite or out-of-range value is refused (returns None),
never raised on; randomness (a direction for two coincident points) comes
from the rng the caller injects.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

DIMENSIONS = 8
ERROR_MAX = 1.5
"""A fresh coordinate's error, and the cap on every error."""
CE = 0.25
"""How fast the error estimate follows the observed relative error."""
CC = 0.25
"""How far one sample moves a coordinate (scaled by relative confidence)."""
ADJUSTMENT_WINDOW = 20
HEIGHT_MIN = 10e-6
GRAVITY_RHO = 150.0
"""Seconds: the pull back to the origin grows as (distance / rho)^2, so the
whole cloud cannot drift away without bound."""
MIN_RTT = 1e-6
MAX_RTT = 10.0
"""Round trips outside (0, MAX_RTT] seconds are refused as samples."""


@dataclass(frozen=True, slots=True)
class Coordinate:
    vec: tuple[float, ...]
    error: float = ERROR_MAX
    adjustment: float = 0.0
    height: float = HEIGHT_MIN

    @classmethod
    def origin(cls, dimensions: int = DIMENSIONS) -> Coordinate:
        return cls((0.0,) * dimensions)

    def is_valid(self) -> bool:
        values = (*self.vec, self.error, self.adjustment, self.height)
        return all(math.isfinite(v) for v in values) and self.height >= 0 and self.error >= 0


def raw_distance(a: Coordinate, b: Coordinate) -> float:
    """Point distance plus both heights (no adjustments)."""
    return math.dist(a.vec, b.vec) + a.height + b.height


def estimate_rtt(a: Coordinate, b: Coordinate) -> float:
    """The estimated round trip in seconds; adjustments count only while they
    leave it positive (as Serf's DistanceTo)."""
    raw = raw_distance(a, b)
    adjusted = raw + a.adjustment + b.adjustment
    return adjusted if adjusted > 0 else raw


def _unit_away(a: Coordinate, b: Coordinate, rng: random.Random) -> tuple[tuple[float, ...], float]:
    """The unit vector from b towards a and their point distance; a random
    direction when the points coincide."""
    diff = [x - y for x, y in zip(a.vec, b.vec, strict=True)]
    mag = math.hypot(*diff)
    if mag > 1e-12:
        return tuple(d / mag for d in diff), mag
    rand = [rng.uniform(-0.5, 0.5) for _ in diff]
    rmag = math.hypot(*rand) or 1.0
    return tuple(r / rmag for r in rand), 0.0


def apply_force(c: Coordinate, other: Coordinate, force: float, rng: random.Random) -> Coordinate:
    """Move c by `force` seconds away from `other` (towards it when negative),
    splitting the move between the point and the height."""
    unit, mag = _unit_away(c, other, rng)
    vec = tuple(x + u * force for x, u in zip(c.vec, unit, strict=True))
    height = c.height
    if mag > 1e-12:
        height = max((c.height + other.height) * force / mag + c.height, HEIGHT_MIN)
    return Coordinate(vec, c.error, c.adjustment, height)


def vivaldi_step(c: Coordinate, other: Coordinate, rtt: float, rng: random.Random) -> Coordinate:
    """One Vivaldi update of c from a round trip to `other`."""
    dist = estimate_rtt(c, other)
    rtt = max(rtt, MIN_RTT)
    wrongness = abs(dist - rtt) / rtt
    weight = c.error / max(c.error + other.error, MIN_RTT)
    error = min(CE * weight * wrongness + c.error * (1 - CE * weight), ERROR_MAX)
    moved = apply_force(c, other, CC * weight * (rtt - dist), rng)
    return Coordinate(moved.vec, error, c.adjustment, moved.height)


def gravity_step(c: Coordinate, rng: random.Random) -> Coordinate:
    """Pull c back towards the origin, harder the further it has drifted."""
    origin = Coordinate.origin(len(c.vec))
    dist = estimate_rtt(origin, c)
    return apply_force(c, origin, -((dist / GRAVITY_RHO) ** 2), rng)


def acceptable(c: Coordinate, other: Coordinate, rtt: float) -> bool:
    """A sample worth learning from: finite values, same dimensions, a sane RTT."""
    return (
        MIN_RTT <= rtt <= MAX_RTT
        and len(c.vec) == len(other.vec)
        and other.is_valid()
        and other.error <= ERROR_MAX * 10
    )
