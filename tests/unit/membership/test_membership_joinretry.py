"""The join-retry policy: backoff and jitter from the injected rng, seeds known
by name asked for again before each retry, and a node left alone rejoining."""

from __future__ import annotations

import itertools
import random

from gossip.core.membership import outputs as out
from gossip.core.membership.config import Config
from gossip.core.membership.joinretry import JOIN_RETRY_MIN, join_retry_delay
from gossip.core.membership.node import Node
from gossip.testing.corenet import Net, addr

CFG = Config.for_profile("lan")


def _run(node: Node, until: float, step: float = 0.05) -> list[tuple[float, out.Output]]:
    """Fire the node's timers up to `until`, returning (time, output) pairs."""
    seen: list[tuple[float, out.Output]] = []
    now = 0.0
    while now <= until:
        node.handle_timeout(now)
        seen += [(now, o) for o in node.take_outputs()]
        now += step
    return seen


def test_the_retry_delay_doubles_up_to_the_cap_with_jitter_from_the_rng() -> None:
    delays = [join_retry_delay(a, 30.0, random.Random(7)) for a in range(8)]
    bases = [min(JOIN_RETRY_MIN * 2**a, 30.0) for a in range(8)]
    assert all(b <= d < 1.5 * b for d, b in zip(delays, bases, strict=True))
    assert delays == [join_retry_delay(a, 30.0, random.Random(7)) for a in range(8)]
    assert join_retry_delay(1000, 30.0, random.Random(7)) < 45.0


def test_a_node_with_named_seeds_asks_for_them_with_growing_gaps_until_joined() -> None:
    node = Node("a", addr(1), CFG, rng=random.Random(1))
    node.start(0.0, [], named_seeds=True)
    asks = [t for t, o in _run(node, 40.0) if isinstance(o, out.ResolveSeeds)]
    gaps = [b - a for a, b in itertools.pairwise(asks)]
    assert len(asks) >= 4
    for attempt, gap in enumerate(gaps, start=1):
        base = min(JOIN_RETRY_MIN * 2**attempt, CFG.reconnect_interval)
        assert base - 0.06 <= gap < 1.5 * base + 0.06  # the timer step is 0.05 s


def test_a_node_with_address_seeds_retries_them_itself_and_never_asks() -> None:
    node = Node("a", addr(1), CFG, rng=random.Random(1))
    node.start(0.0, [addr(2)])
    seen = _run(node, 20.0)
    assert not any(isinstance(o, out.ResolveSeeds) for _, o in seen)
    joins = [t for t, o in seen if isinstance(o, out.OpenStream) and o.to == addr(2)]
    assert len(joins) >= 3  # the join at start, then retries


def test_resolved_seeds_are_joined_at_once_while_not_joined() -> None:
    node = Node("a", addr(1), CFG, rng=random.Random(1))
    node.start(0.0, [], named_seeds=True)
    node.take_outputs()
    node.set_seeds(1.0, [addr(2), addr(1), addr(3)])
    streams = [o.to for o in node.take_outputs() if isinstance(o, out.OpenStream)]
    assert streams == [addr(2), addr(3)]  # never ourselves


def test_a_joined_node_left_alone_asks_for_its_seeds_again() -> None:
    net = Net(2)
    a, b = net.nodes
    b.start(0.0, [])
    a.start(0.0, [b.address], named_seeds=True)
    net.drain(b)
    net.drain(a)
    net.run_until(5.0)
    assert net.outputs_of("n0", out.Joined)
    assert not net.outputs_of("n0", out.ResolveSeeds)
    net.down.add("n1")
    net.run_until(5.0 + 2 * CFG.reconnect_interval + CFG.dead_reap_time)
    assert net.outputs_of("n0", out.ResolveSeeds)
