"""Push-pull at the node: entries equal to ours are skipped, news is applied,
and a frame with one bad entry is refused whole."""

from __future__ import annotations

import random

import cbor2

from gossip.core.membership import outputs as out
from gossip.core.membership.config import Config
from gossip.core.membership.messages import (
    Alive,
    Kind,
    PushPull,
    PushPullReply,
    StateEntry,
    Suspect,
)
from gossip.core.membership.node import Node
from gossip.core.membership.pushpull import SETTLE_PULLS
from gossip.core.membership.staterows import StateRows
from gossip.core.membership.wire import Codec, encode_message, state_row, wrap
from gossip.core.types import MemberState
from gossip.testing.corenet import Net, addr

CFG = Config.for_profile("lan")
CODEC = Codec(CFG)
ALIVE, SUSPECT, DEAD = MemberState.ALIVE, MemberState.SUSPECT, MemberState.DEAD


def _settled(n: int = 4) -> Net:
    net = Net(n)
    net.start_all()
    net.run_until(3.0)
    return net


def _count_parses(node: Node) -> list[bytes]:
    parsed: list[bytes] = []
    parse = node._codec.parse_entry

    def counting(raw: bytes) -> StateEntry:
        parsed.append(raw)
        return parse(raw)

    node._codec.parse_entry = counting  # type: ignore[method-assign]
    return parsed


def _entries(node: Node) -> tuple[StateEntry, ...]:
    return tuple(
        StateEntry(m.name, m.address, m.incarnation, m.state, m.tags) for m in node.members()
    )


def test_a_push_pull_of_our_own_state_changes_nothing_and_answers_our_state() -> None:
    net = _settled()
    a = net.nodes[1]
    a.take_outputs()
    before = {m.name: m for m in a.members()}
    parsed = _count_parses(a)
    reply = a.handle_stream_request(10.0, addr(9), CODEC.frame(PushPull(False, _entries(a))))
    assert reply is not None
    assert {m.name: m for m in a.members()} == before
    assert parsed == []  # every entry was recognised by its bytes
    decoded = CODEC.decode_frame(reply)
    assert sorted(decoded.entries, key=str) == sorted(_entries(a), key=str)  # type: ignore[union-attr]
    assert [type(o) for o in a.take_outputs()] == [out.PushPullCompleted]


def test_an_entry_that_differs_is_parsed_and_applied() -> None:
    net = _settled()
    a = net.nodes[1]
    theirs = [
        StateEntry(e.name, e.address, e.incarnation, SUSPECT, e.tags) if e.name == "n3" else e
        for e in _entries(a)
    ]
    parsed = _count_parses(a)
    a.handle_stream_request(10.0, addr(9), CODEC.frame(PushPull(False, tuple(theirs))))
    assert a.member("n3").state == SUSPECT  # type: ignore[union-attr]
    assert len(parsed) == 1
    assert any(isinstance(o, out.MemberSuspected) for o in a.take_outputs())


def test_one_bad_entry_refuses_the_whole_frame_before_any_is_applied() -> None:
    net = _settled()
    a = net.nodes[1]
    a.take_outputs()
    n3 = a.member("n3")
    assert n3 is not None
    newer = cbor2.dumps([1, "n3", n3.incarnation + 5, n3.address[0], n3.address[1], {}])
    bad = cbor2.dumps([0, "n2", 1, "10.0.0.2", 99999, {}])  # port out of range
    frame = CODEC.prefix + b"\x81" + wrap(cbor2.dumps([Kind.PUSH_PULL, False, [newer, bad]]))
    assert a.handle_stream_request(10.0, addr(9), frame) is None
    assert a.member("n3") == n3
    assert a.take_outputs() == [out.DatagramRejected(addr(9), "bad_field")]


def test_state_rows_count_only_the_current_snapshot_as_known() -> None:
    net = _settled()
    a = net.nodes[1]
    rows = StateRows()
    table = a._table
    n3 = a.member("n3")
    assert n3 is not None
    old_row = state_row(n3)
    assert rows.news(table, [old_row]) == []
    # a refutation replaces the snapshot: the old bytes are news again
    a.receive_datagram(
        11.0,
        addr(3),
        CODEC.packet([wrap(encode_message(Alive("n3", n3.incarnation + 1, n3.address, {})))]),
    )
    assert a.member("n3").incarnation == n3.incarnation + 1  # type: ignore[union-attr]
    assert rows.news(table, [old_row]) == [old_row]
    assert wrap(state_row(a.member("n3"))) in rows.wrapped(table)  # type: ignore[arg-type]


def test_a_cluster_whose_sync_frames_are_all_news_still_converges() -> None:
    # Nodes that never gossiped learn each other through push-pull alone.
    nodes = [Node(f"m{i}", addr(i), CFG, rng=random.Random(i)) for i in range(3)]
    for node in nodes:
        node.start(0.0, [])
        node.take_outputs()
    for x in nodes:
        for y in nodes:
            if x is not y:
                reply = y.handle_stream_request(
                    1.0, x.address, CODEC.frame(PushPull(True, _entries(x)))
                )
                assert reply is not None
    for node in nodes:
        assert {m.name for m in node.members() if m.state == ALIVE} == {"m0", "m1", "m2"}


def _pulls(net: Net, name: str) -> int:
    """Pull-only syncs (settling pulls) `name` has opened so far."""
    empty = CODEC.sync_frame(False, [])
    return sum(o.payload == empty for o in net.outputs_of(name, out.OpenStream))


def test_settling_pulls_follow_a_join_and_stop_once_nothing_grows() -> None:
    net = Net(8)
    net.start_all()
    net.run_until(20.0)
    early = {n.name: _pulls(net, n.name) for n in net.nodes}
    net.run_until(60.0)
    for node in net.nodes[1:]:
        assert 1 <= early[node.name] <= SETTLE_PULLS
        assert _pulls(net, node.name) == early[node.name]  # the series ended
    # the first seed never joins anyone, but answering joins that taught it
    # new members made it pull too
    assert early["n0"] >= 1


def test_a_node_whose_member_count_keeps_growing_keeps_pulling_up_to_the_limit() -> None:
    net = Net(3)
    net.start_all()
    net.run_until(5.0)
    a = net.nodes[1]
    base = _pulls(net, "n1")
    # A node that keeps learning new members between its pulls keeps pulling.
    a._syncer._settle_soon(net.now)
    net.drain(a)
    for i in range(40):
        newcomer = Alive(f"x{i}", 1, addr(100 + i), {})
        a.receive_datagram(net.now, addr(2), CODEC.packet([wrap(encode_message(newcomer))]))
        net.drain(a)
        net.run_until(net.now + 0.5)
    assert _pulls(net, "n1") - base == SETTLE_PULLS


def _settle_reply_teaching(node: Node, names: list[str]) -> None:
    node._syncer._settle(1.0, None)
    stream = next(o for o in node.take_outputs() if isinstance(o, out.OpenStream))
    entries = tuple(
        StateEntry(n, addr(50 + i), 1, ALIVE, {}) for i, n in enumerate(names)
    ) + _entries(node)
    node.receive_stream_response(1.1, stream.stream_id, CODEC.frame(PushPullReply(entries)))


def test_a_settling_pull_under_a_backlog_teaches_new_members_without_queueing_them() -> None:
    for backlogged in (False, True):
        node = Node("me", addr(1), CFG, rng=random.Random(1))
        node.start(0.0, [])
        node.receive_datagram(
            0.5, addr(2), CODEC.packet([wrap(encode_message(Alive("peer", 1, addr(2), {})))])
        )
        node.take_outputs()
        if backlogged:
            node._gossip.queue.backlog_bytes = 0  # anything pending is a backlog
        _settle_reply_teaching(node, ["new1", "new2"])
        assert node.member("new1") is not None and node.member("new2") is not None
        queued = node._gossip.queue.pending(
            "new1", wrap(encode_message(Alive("new1", 1, addr(50), {})))
        )
        assert queued is not backlogged


def _suspecting_n3(cfg: Config) -> tuple[Node, float]:
    """Node a with members b..e, suspecting n3 by its own failed probe at t=0.2
    (no confirmation: others' suspicions and the death broadcast missed it)."""
    node = Node("a", addr(1), cfg, rng=random.Random(3))
    node.start(0.0, [])
    for i in range(2, 6):
        alive = Alive(f"n{i}", 5, addr(i), {})
        node.receive_datagram(0.1, addr(i), CODEC.packet([wrap(encode_message(alive))]))
    node._suspicions.suspect(0.2, "n3", 5, "a")
    node.take_outputs()
    return node, 0.2


def _table_with_n3_dead(node: Node, incarnation: int = 5) -> tuple[StateEntry, ...]:
    return tuple(
        StateEntry(e.name, e.address, incarnation, DEAD, e.tags) if e.name == "n3" else e
        for e in _entries(node)
    )


def _failed(node: Node) -> list[out.MemberFailed]:
    return [o for o in node.take_outputs() if isinstance(o, out.MemberFailed)]


def test_a_push_pull_holding_our_suspect_dead_settles_it_at_once_past_the_minimum() -> None:
    # The death broadcast can miss one observer entirely under loss; the next
    # push-pull must carry the verdict instead of leaving that observer to
    # wait out its longest, unconfirmed timeout.
    node, start = _suspecting_n3(CFG)
    susp = node._suspicions.get("n3")
    assert susp.timeout == susp.max_s
    later = start + susp.min_s + 1.0
    frame = CODEC.frame(PushPull(False, _table_with_n3_dead(node)))
    assert node.handle_stream_request(later, addr(4), frame) is not None
    node.handle_timeout(later)
    failed = _failed(node)
    assert [f.member.name for f in failed] == ["n3"]
    assert node.member("n3").state == DEAD  # type: ignore[union-attr]


def test_a_reply_holding_our_suspect_dead_settles_it_likewise() -> None:
    node, start = _suspecting_n3(CFG)
    later = start + node._suspicions.get("n3").min_s + 1.0
    node._syncer._push_pull_tick(later, None)
    stream = next(o for o in node.take_outputs() if isinstance(o, out.OpenStream))
    reply = CODEC.frame(PushPullReply(_table_with_n3_dead(node)))
    node.receive_stream_response(later + 0.01, stream.stream_id, reply)
    node.handle_timeout(later + 0.01)
    assert [f.member.name for f in _failed(node)] == ["n3"]


def test_a_remote_death_never_cuts_a_suspicion_below_its_minimum_timeout() -> None:
    node, start = _suspecting_n3(CFG)
    min_s = node._suspicions.get("n3").min_s
    frame = CODEC.frame(PushPull(False, _table_with_n3_dead(node)))
    node.handle_stream_request(start + 0.5, addr(4), frame)
    node.handle_timeout(start + min_s - 0.01)
    assert node.member("n3").state == SUSPECT  # type: ignore[union-attr]
    node.handle_timeout(start + min_s)
    assert node.member("n3").state == DEAD  # type: ignore[union-attr]


def test_a_remote_death_of_a_member_we_hold_alive_only_makes_us_suspect() -> None:
    net = _settled()
    a = net.nodes[1]
    a.take_outputs()
    frame = CODEC.frame(PushPull(False, _table_with_n3_dead(a, a.member("n3").incarnation)))  # type: ignore[union-attr]
    a.handle_stream_request(10.0, addr(9), frame)
    assert a.member("n3").state == SUSPECT  # type: ignore[union-attr]
    a.handle_timeout(10.0 + a._suspicions.get("n3").min_s)
    assert a.member("n3").state == SUSPECT  # type: ignore[union-attr]


def test_a_remote_death_at_an_older_incarnation_does_not_settle_a_newer_suspicion() -> None:
    node, start = _suspecting_n3(CFG)
    susp = node._suspicions.get("n3")
    frame = CODEC.frame(PushPull(False, _table_with_n3_dead(node, incarnation=4)))
    node.handle_stream_request(start + susp.min_s + 1.0, addr(4), frame)
    node.handle_timeout(start + susp.min_s + 1.0)
    assert node.member("n3").state == SUSPECT  # type: ignore[union-attr]
    assert susp.timeout == susp.max_s


def _table_with_n3_suspect(node: Node) -> tuple[StateEntry, ...]:
    return tuple(
        StateEntry(e.name, e.address, e.incarnation, SUSPECT, e.tags) if e.name == "n3" else e
        for e in _entries(node)
    )


def _suspects_sent(outputs: list[out.Output]) -> dict[tuple[str, int], list[Suspect]]:
    """The Suspect messages in the datagrams sent, by destination."""
    sent: dict[tuple[str, int], list[Suspect]] = {}
    for o in outputs:
        if isinstance(o, out.Send):
            found = [m for m in CODEC.decode_packet(o.payload) if isinstance(m, Suspect)]
            sent.setdefault(o.to, []).extend(found)
    return sent


def test_a_suspicion_learned_from_a_push_pull_is_told_to_the_suspect_alone() -> None:
    # Gossiped under our name it would confirm the original accuser's own
    # suspicion, cutting short the time the suspect has to refute after a heal.
    net = _settled()
    a = net.nodes[1]
    a.take_outputs()
    a.handle_stream_request(10.0, addr(4), CODEC.frame(PushPull(False, _table_with_n3_suspect(a))))
    assert a.member("n3").state == SUSPECT  # type: ignore[union-attr]
    outputs = a.take_outputs()
    a.handle_timeout(10.0 + 3 * CFG.gossip_interval)  # a few gossip rounds
    outputs += a.take_outputs()
    sent = _suspects_sent(outputs)
    told = sent.get(addr(3), [])
    assert told and all(s.name == "n3" for s in told), "the suspect hears it, to refute"
    others = [s for to, msgs in sent.items() if to != addr(3) for s in msgs]
    assert not others, "no one else counts it as an accusation"
