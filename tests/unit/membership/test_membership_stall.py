"""A stalled event loop: the shell reports how late its timers fire, and the
node waits longer instead of accusing the peers whose acks sat in its queue."""

from __future__ import annotations

import random

from gossip.core.membership import outputs as out
from gossip.core.membership.config import Config
from gossip.core.membership.messages import Ack, Alive, Message, Ping, PingReq
from gossip.core.membership.node import Node
from gossip.core.membership.wire import Codec, encode_message, wrap

CFG = Config(tcp_fallback_ping=False)
STALL = 3.0


def _packet(*msgs: Message) -> bytes:
    return Codec(CFG).packet([wrap(encode_message(m)) for m in msgs])


def _node(cfg: Config = CFG) -> Node:
    node = Node("me", ("10.0.0.1", 1), cfg, rng=random.Random(7))
    node.start(0.0, [])
    for i in range(2, 7):
        node.receive_datagram(
            0.0, (f"10.0.0.{i}", 1), _packet(Alive(f"p{i}", 1, (f"10.0.0.{i}", 1), {}))
        )
    node.take_outputs()
    return node


def _first_ping(node: Node) -> tuple[tuple[str, int], Ping, float]:
    while True:
        deadline = node.next_deadline()
        assert deadline is not None
        node.handle_timeout(deadline)
        for o in node.take_outputs():
            if isinstance(o, out.Send):
                pings = [m for m in Codec(CFG).decode_packet(o.payload) if isinstance(m, Ping)]
                if pings:
                    return o.to, pings[0], deadline


def _stall_then_ack(node: Node, report: bool) -> list[object]:
    """Ping sent, then the loop blocks for STALL seconds while the ack waits in
    the socket; on waking, the shell fires the overdue timers, then reads the ack."""
    target, ping, start = _first_ping(node)
    woke = start + STALL
    if report:
        deadline = node.next_deadline()
        assert deadline is not None
        node.loop_lagged(woke, woke - deadline)
    node.handle_timeout(woke)
    node.receive_datagram(woke, target, _packet(Ack(ping.seq)))
    node.handle_timeout(woke + 0.01)
    return node.take_outputs()


def test_without_the_report_a_stall_turns_a_queued_ack_into_a_suspicion() -> None:
    outs = _stall_then_ack(_node(), report=False)
    assert [o for o in outs if isinstance(o, out.MemberSuspected)]


def test_a_reported_stall_raises_health_and_the_queued_ack_still_counts() -> None:
    node = _node()
    outs = _stall_then_ack(node, report=True)
    assert not [o for o in outs if isinstance(o, out.MemberSuspected)]
    sent = [m for o in outs if isinstance(o, out.Send) for m in Codec(CFG).decode_packet(o.payload)]
    assert not [m for m in sent if isinstance(m, PingReq)]  # no indirect round either
    changes = [o for o in outs if isinstance(o, out.HealthChanged)]
    # 2.5 s late = 1 + two probe intervals; the ack then takes one back.
    assert [(c.health, c.reason) for c in changes] == [(3, "loop_stalled"), (2, "probe_succeeded")]
    assert node.health == 2


def test_the_restarted_probe_waits_the_health_scaled_interval_then_judges() -> None:
    node = _node()
    _, ping, start = _first_ping(node)
    woke = start + STALL
    node.loop_lagged(woke, STALL - CFG.probe_timeout)
    node.handle_timeout(woke + 3.9 * CFG.probe_interval)  # health 3: the probe lasts 4 s
    assert not [o for o in node.take_outputs() if isinstance(o, out.MemberSuspected)]
    node.handle_timeout(woke + 4 * CFG.probe_interval)  # still no ack: now it counts
    suspected = [o for o in node.take_outputs() if isinstance(o, out.MemberSuspected)]
    assert [s.member.name for s in suspected] == [ping.target]


def test_short_lateness_or_awareness_off_changes_nothing() -> None:
    node = _node()
    node.loop_lagged(1.0, CFG.probe_timeout * 0.9)
    assert node.health == 0 and not node.take_outputs()
    off = _node(CFG.replace(stall_awareness=False))
    outs = _stall_then_ack(off, report=True)
    assert off.health > 0  # from the failed probe, not from the stall
    assert [o for o in outs if isinstance(o, out.MemberSuspected)]
    assert not [o for o in outs if isinstance(o, out.HealthChanged) and o.reason == "loop_stalled"]
