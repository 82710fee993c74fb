"""The simulated network's fault model: what happens to one datagram on one link.

Rules: every decision draws from the simulator's single seeded rng, in the
order the simulator asks, so a run replays exactly. A datagram on a link is
dropped (loss, or a partition between the endpoints' groups), or delivered
after latency + uniform jitter; it may be reordered (held back by a few extra
latencies) and duplicated (delivered twice). Streams ride on the same links
but are reliable: loss costs them retransmission delays, not data.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

TCP_RTO = 0.2
"""The retransmission delay a lost TCP segment costs (Linux's minimum RTO)."""


@dataclass
class FaultModel:
    loss: float = 0.0
    """Probability that a datagram is lost, on every link."""
    latency: float = 0.001
    """One-way delay in seconds."""
    jitter: float = 0.0
    """Extra one-way delay, uniform in [0, jitter) seconds."""
    duplicate: float = 0.0
    reorder: float = 0.0
    """Probability that a datagram is held back by 2-5 latencies."""
    link_loss: dict[tuple[int, int], float] = field(default_factory=dict)
    """Per directed link (src, dst) loss overriding `loss`."""
    groups: dict[int, int] = field(default_factory=dict)
    """Partition: node index -> group; nodes in different groups cannot talk.
    Empty means no partition."""
    link_latency: Callable[[int, int], float] | None = None
    """One-way delay per directed link (src, dst), overriding `latency` (a
    WAN's latency matrix, wan.py); draws nothing from the rng."""

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {value}")
        if self.latency < 0 or self.jitter < 0:
            raise ValueError("latency and jitter must be >= 0")

    def partition(self, groups: list[list[int]]) -> None:
        self.groups = {i: g for g, members in enumerate(groups) for i in members}

    def heal(self) -> None:
        self.groups = {}

    def connected(self, src: int, dst: int) -> bool:
        groups = self.groups
        return not groups or groups.get(src, -1) == groups.get(dst, -1)

    def datagram_delays(self, rng: random.Random, src: int, dst: int) -> tuple[float, ...]:
        """Delivery delays for one datagram: () when lost, two when duplicated."""
        if self.groups and not self.connected(src, dst):
            return ()
        loss = self.link_loss.get((src, dst), self.loss) if self.link_loss else self.loss
        if loss and rng.random() < loss:
            return ()
        delay = self.link_latency(src, dst) if self.link_latency else self.latency
        if self.jitter:
            delay += rng.random() * self.jitter
        if self.reorder and rng.random() < self.reorder:
            delay += self.latency * rng.uniform(2.0, 5.0)
        if self.duplicate and rng.random() < self.duplicate:
            return (delay, delay + self.latency * rng.random())
        return (delay,)

    def stream_delay(self, rng: random.Random, src: int, dst: int) -> float:
        """One-way delay of a stream transfer: every lost segment costs an RTO."""
        loss = self.link_loss.get((src, dst), self.loss) if self.link_loss else self.loss
        base = self.link_latency(src, dst) if self.link_latency else self.latency
        delay = base + (rng.random() * self.jitter if self.jitter else 0.0)
        tries = 0
        while loss and rng.random() < loss and tries < 6:
            tries += 1
            delay += TCP_RTO * 2 ** (tries - 1)
        return delay
