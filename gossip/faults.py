"""The fault model of a simulated network: what befalls each datagram on each link.

One model serves the discrete-event simulator (gossip/sim), the in-memory
networks (gossip/testing: memnet for whole agents, corenet for cores) and, via
memnet, the whole-agent fault runs, which change it over time as their steps
start and end.

Rules:
- Hosts are keys of any hashable kind (a host index, an IP, a node name).
- reachable(src, dst) judges the topology: a host that is down sends and
  receives nothing; a partition splits the hosts it names into groups that
  cannot talk (a host it does not name reaches everyone); a one-way cut drops
  everything from src to dst. heal() ends partitions and cuts, not downs.
  The network chooses when to judge: at send (the simulator) or at delivery
  (the in-memory network, where a datagram in flight when a cut starts is lost).
- A paused host (a stopped process, a long GC stall, CPU starvation) is alive
  and reachable: nothing to or from it is lost for the pause, it waits until
  the host resumes. How it waits is the network's: the simulator keeps what
  arrives in the host's backlog and runs it on resume; the in-memory network
  blocks every datagram and stream operation of the host, so its core task
  stops at its first send, as a stopped process would. resume() of a host not
  paused does nothing.
- datagram_delays() draws one datagram's fate from the caller's seeded rng,
  always in this order: lost (the link's loss, else the model's), duplicated
  (two copies), then for each copy its jitter and whether it is held back
  (reordered) and by how much. A draw is made only when its probability or
  width is not zero, so a model without faults draws nothing.
- stream_delay() is a reliable transfer's one-way delay: each lost segment
  costs an RTO, doubling, for at most STREAM_RETRIES segments.
- Times are seconds; probabilities are within 0..1 (checked on construction).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

TCP_RTO = 0.2
"""The retransmission delay a lost TCP segment costs (Linux's minimum RTO)."""
STREAM_RETRIES = 6
"""Lost segments a stream transfer pays for at most."""

H = TypeVar("H", bound=Hashable)


@dataclass
class FaultModel(Generic[H]):
    loss: float = 0.0
    """Probability that a datagram is lost, on every link without its own."""
    latency: float = 0.001
    """One-way delay in seconds."""
    jitter: float = 0.0
    """Extra one-way delay, uniform in [0, jitter) seconds, drawn per copy."""
    duplicate: float = 0.0
    """Probability that a datagram is delivered twice."""
    reorder: float = 0.0
    """Probability that a copy is held back (so later datagrams overtake it)."""
    reorder_window: tuple[float, float] = (0.0, 0.05)
    """A held-back copy waits a further uniform [low, high) seconds."""
    link_loss: dict[tuple[H, H], float] = field(default_factory=dict)
    """Per directed link (src, dst) loss overriding `loss`."""
    down: set[H] = field(default_factory=set)
    """Hosts that are down (crashed): nothing in or out."""
    paused: set[H] = field(default_factory=set)
    """Hosts that are paused: alive, but nothing moves in or out until they resume."""
    groups: dict[H, int] = field(default_factory=dict)
    """Partition: host -> group; hosts of different groups cannot talk. Empty
    means no partition."""
    cuts: set[tuple[H, H]] = field(default_factory=set)
    """One-way cuts (src, dst)."""
    link_latency: Callable[[H, H], float] | None = None
    """One-way delay per directed link (src, dst), overriding `latency` (a
    WAN's latency matrix, sim/wan.py); draws nothing from the rng."""

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder"):
            _check_probability(name, getattr(self, name))
        for value in self.link_loss.values():
            _check_probability("link loss", value)
        low, high = self.reorder_window
        if self.latency < 0 or self.jitter < 0 or not 0 <= low <= high:
            raise ValueError("latency, jitter and the reorder window must be >= 0")

    # ---- topology -------------------------------------------------------------

    def partition(self, *groups: Iterable[H]) -> None:
        """Split the named hosts into these groups (the latest partition wins)."""
        self.groups = {h: g for g, members in enumerate(groups) for h in members}

    def cut(self, src: H, dst: H) -> None:
        """Drop everything from `src` to `dst` (one way)."""
        self.cuts.add((src, dst))

    def heal(self) -> None:
        """End every partition and cut (down hosts stay down)."""
        self.groups = {}
        self.cuts.clear()

    def pause(self, host: H) -> None:
        self.paused.add(host)

    def resume(self, host: H) -> bool:
        """End `host`'s pause; False if it was not paused."""
        if host not in self.paused:
            return False
        self.paused.discard(host)
        return True

    def reachable(self, src: H, dst: H) -> bool:
        if self.down and (src in self.down or dst in self.down):
            return False
        if self.cuts and (src, dst) in self.cuts:
            return False
        groups = self.groups
        if not groups:
            return True
        a, b = groups.get(src), groups.get(dst)
        return a is None or b is None or a == b

    # ---- draws ---------------------------------------------------------------------

    def datagram_delays(self, rng: random.Random, src: H, dst: H) -> tuple[float, ...]:
        """Delivery delays for one datagram: () when lost, two when duplicated."""
        loss = self.link_loss.get((src, dst), self.loss) if self.link_loss else self.loss
        if loss and rng.random() < loss:
            return ()
        if self.duplicate and rng.random() < self.duplicate:
            return (self._copy_delay(rng, src, dst), self._copy_delay(rng, src, dst))
        return (self._copy_delay(rng, src, dst),)

    def _base_latency(self, src: H, dst: H) -> float:
        return self.link_latency(src, dst) if self.link_latency else self.latency

    def _copy_delay(self, rng: random.Random, src: H, dst: H) -> float:
        delay = self._base_latency(src, dst)
        if self.jitter:
            delay += rng.random() * self.jitter
        if self.reorder and rng.random() < self.reorder:
            delay += rng.uniform(*self.reorder_window)
        return delay

    def stream_delay(self, rng: random.Random, src: H, dst: H) -> float:
        """One-way delay of a stream transfer: every lost segment costs an RTO."""
        loss = self.link_loss.get((src, dst), self.loss) if self.link_loss else self.loss
        delay = self._base_latency(src, dst) + (rng.random() * self.jitter if self.jitter else 0.0)
        tries = 0
        while loss and rng.random() < loss and tries < STREAM_RETRIES:
            tries += 1
            delay += TCP_RTO * 2 ** (tries - 1)
        return delay


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be within 0..1, got {value}")
