"""User events in the core: Lamport order, dedupe, replays, coalescing, gossip."""

from __future__ import annotations

import pytest

from gossip.core.membership import outputs as out
from gossip.core.membership.config import Config
from gossip.core.membership.messages import Ack, SyncRows, UserEvent
from gossip.core.membership.userevents import UserEvents
from gossip.core.membership.wire import Codec, encode_message, wrap
from gossip.core.membership.wireschema import WireError
from gossip.testing.corenet import Net


def _events(**cfg: int) -> UserEvents:
    config = Config().replace(**cfg)
    return UserEvents(config, Codec(config).room)


def test_firing_stamps_the_lamport_clock_and_advances_it() -> None:
    ev = _events()
    first = ev.fire("deploy", b"v1", coalesce=False)
    second = ev.fire("deploy", b"v2", coalesce=False)
    assert (first.ltime, second.ltime) == (0, 1)
    assert ev.clock == 2


def test_an_event_heard_moves_the_clock_past_its_time() -> None:
    ev = _events()
    assert ev.receive(UserEvent(41, "x", b"", False))
    assert ev.fire("y", b"", coalesce=False).ltime == 42


def test_a_duplicate_is_not_delivered_twice() -> None:
    ev = _events()
    event = UserEvent(5, "deploy", b"v1", False)
    assert ev.receive(event)
    assert not ev.receive(event)
    # Same time and name, another payload: a different event.
    assert ev.receive(UserEvent(5, "deploy", b"v2", False))


def test_an_event_older_than_the_window_is_refused_as_a_replay() -> None:
    ev = _events(event_window=16)
    old = UserEvent(3, "deploy", b"", False)
    assert ev.receive(old)
    assert ev.receive(UserEvent(100, "later", b"", False))
    assert not ev.receive(old)
    assert not ev.receive(UserEvent(50, "also-old", b"", False))
    assert [e.ltime for e in ev.recent()] == [100]


def test_coalescing_skips_an_event_older_than_one_delivered() -> None:
    ev = _events()
    assert ev.receive(UserEvent(9, "deploy", b"new", True))
    assert not ev.receive(UserEvent(7, "deploy", b"old", True))
    assert ev.receive(UserEvent(7, "deploy", b"kept", False))
    assert ev.receive(UserEvent(8, "other", b"", True))


def test_an_event_above_the_limit_is_refused_with_a_clear_error() -> None:
    ev = _events(max_event_bytes=64, event_budget=96)
    ev.fire("n", b"x" * 63, coalesce=False)
    with pytest.raises(ValueError, match="limit is 64"):
        ev.fire("n", b"x" * 64, coalesce=False)


def test_events_take_no_more_than_their_budget_of_a_packet() -> None:
    ev = _events(max_event_bytes=64, event_budget=200)
    for i in range(20):
        ev.fire(f"e{i}", b"p" * 50, coalesce=False)
    taken = ev.take(1000, limit=4)
    assert 0 < sum(len(p) for p in taken) <= 200


def test_the_wire_refuses_an_oversized_or_malformed_user_event() -> None:
    cfg = Config().replace(max_event_bytes=64, event_budget=96)
    codec = Codec(cfg)
    ok = UserEvent(1, "n", b"x" * 63, True)
    assert codec.parse(encode_message(ok)) == ok
    with pytest.raises(WireError):
        codec.parse(encode_message(UserEvent(1, "n", b"x" * 64, True)))
    with pytest.raises(WireError):
        codec.parse(bytes.fromhex("8500") + b"\x61n" + b"\x61x" + b"\xf5")  # str payload


def test_every_node_delivers_every_event_exactly_once_under_loss() -> None:
    net = Net(12, Config.for_profile("local"), seed=3)
    net.loss = 0.1
    net.start_all()
    net.run_until(4.0)
    for i in range(10):
        sender = net.nodes[i % len(net.nodes)]
        sender.user_event(net.now, f"ev{i}", b"payload", coalesce=False)
        net.drain(sender)
    net.run_until(12.0)
    for node in net.nodes:
        got = sorted(o.name for o in net.outputs_of(node.name, out.UserEventReceived))
        assert got == sorted(f"ev{i}" for i in range(10)), node.name


def test_membership_updates_go_before_user_events_in_a_packet() -> None:
    cfg = Config()
    codec = Codec(cfg)
    net = Net(2, cfg)
    net.start_all()
    net.run_until(2.0)
    node = net.nodes[0]
    node.user_event(net.now, "big", b"x" * 400, coalesce=False)
    node.set_tags(net.now, {"role": "web"})
    node.take_outputs()
    net.run_until(net.now + 0.3)
    sent = [o for who, o in net.log if who == "n0" and isinstance(o, out.Send)]
    kinds = [[codec.parse(raw).KIND for raw in codec.split_packet(s.payload)] for s in sent]
    mixed = [k for k in kinds if UserEvent.KIND in k and len(k) > 1]
    assert mixed, kinds
    for k in mixed:
        assert k.index(UserEvent.KIND) == len(k) - 1


def test_a_node_that_joins_later_gets_the_recent_events_by_push_pull_once() -> None:
    net = Net(3, Config.for_profile("local"))
    seeds = [net.nodes[0].address]
    early, late = [net.nodes[0], net.nodes[2]], net.nodes[1]
    for node in early:
        node.start(net.now, seeds)
        net.drain(node)
    net.run_until(3.0)
    for i in range(3):
        early[0].user_event(net.now, f"ev{i}", b"", coalesce=False)
        net.drain(early[0])
    net.run_until(20.0)  # long after the gossip of the events has ended
    assert not early[0]._events  # nothing left to gossip: only push-pull can help
    late.start(net.now, seeds)
    net.drain(late)
    net.run_until(40.0)
    got = [o.name for o in net.outputs_of("n1", out.UserEventReceived)]
    assert got == ["ev0", "ev1", "ev2"]
    assert sorted(o.name for o in net.outputs_of("n2", out.UserEventReceived)) == got


def test_push_pull_frames_carry_user_events_and_refuse_anything_else_there() -> None:
    codec = Codec(Config())
    event = UserEvent(2, "deploy", b"v", True)
    events = [wrap(encode_message(event))]
    frame = codec.sync_frame(True, [], events)
    msg = codec.decode_sync_frame(frame)
    assert isinstance(msg, SyncRows)
    assert codec.parse_events(msg.events) == [event]
    assert codec.decode_sync_frame(codec.sync_frame(None, [])) == SyncRows(None, ())
    bad = codec.sync_frame(None, [], [wrap(encode_message(Ack(1)))])
    reply = codec.decode_sync_frame(bad)
    assert isinstance(reply, SyncRows)
    with pytest.raises(WireError):
        codec.parse_events(reply.events)
