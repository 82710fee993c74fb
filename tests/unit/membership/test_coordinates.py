"""Network coordinates: Vivaldi's math, the coordinate message, and the node's part."""

from __future__ import annotations

import math
import random

import cbor2
import pytest

from gossip.core.membership import vivaldi
from gossip.core.membership.config import Config
from gossip.core.membership.coordinates import from_message, nearest, to_message
from gossip.core.membership.messages import Ack, CoordinateMsg
from gossip.core.membership.vivaldi import Coordinate, estimate_rtt
from gossip.core.membership.wire import Codec, wrap
from gossip.core.membership.wireschema import WireError
from gossip.testing.corenet import Net

CFG = Config.for_profile("lan")


def test_samples_of_a_fixed_round_trip_pull_the_estimate_to_it() -> None:
    rng = random.Random(1)
    a, b = Coordinate.origin(), Coordinate((0.001,) + (0.0,) * 7)
    for _ in range(200):
        a = vivaldi.vivaldi_step(a, b, 0.050, rng)
        b = vivaldi.vivaldi_step(b, a, 0.050, rng)
    assert estimate_rtt(a, b) == pytest.approx(0.050, rel=0.05)
    assert a.error < vivaldi.ERROR_MAX / 2


def test_coincident_points_are_pushed_apart_in_some_direction() -> None:
    a = Coordinate.origin()
    moved = vivaldi.vivaldi_step(a, Coordinate.origin(), 0.010, random.Random(3))
    assert math.hypot(*moved.vec) > 0


def test_an_insane_sample_is_not_acceptable() -> None:
    a = Coordinate.origin()
    bad = Coordinate((math.nan,) * 8)
    assert not vivaldi.acceptable(a, a, 0.0)
    assert not vivaldi.acceptable(a, a, 60.0)
    assert not vivaldi.acceptable(a, bad, 0.01)
    assert not vivaldi.acceptable(a, Coordinate.origin(3), 0.01)
    assert vivaldi.acceptable(a, a, 0.01)


def test_the_coordinate_message_round_trips_through_the_wire_in_fixed_point() -> None:
    c = Coordinate((0.0123, -0.0004, 0, 0, 0, 0, 0, 0.5), 0.25, -0.0001, 0.0003)
    msg = to_message("n1", c)
    codec = Codec(CFG)
    (decoded,) = codec.decode_packet(codec.packet([wrap(codec.encode(msg))]))
    assert decoded == msg
    back = from_message(msg)
    assert back.vec == pytest.approx(c.vec, abs=1e-6) and back.height == pytest.approx(0.0003)


@pytest.mark.parametrize(
    "fields",
    [
        ["n1", [], 0, 0, 0],
        ["n1", [0] * 17, 0, 0, 0],
        ["n1", [10**9], 0, 0, 0],
        ["n1", [1.5], 0, 0, 0],
        ["n1", [1], -1, 0, 0],
        ["n1", [1], 0, 0],
    ],
)
def test_a_malformed_coordinate_message_is_refused(fields: list[object]) -> None:
    codec = Codec(CFG)
    raw = cbor2.dumps([11, *fields])
    with pytest.raises(WireError, match="bad_field"):
        codec.decode_packet(codec.packet([wrap(raw)]))


def test_with_coordinates_off_no_packet_carries_one() -> None:
    net = Net(3)
    net.start_all()
    net.run_until(10)
    codec = Codec(CFG)
    sent = [o.payload for _, o in net.log if type(o).__name__ == "Send"]
    assert sent and not any(
        isinstance(m, CoordinateMsg) for p in sent for m in codec.decode_packet(p)
    )
    assert all(n.coordinates.samples == 0 for n in net.nodes)


def test_nodes_with_coordinates_on_learn_the_round_trip_between_them() -> None:
    cfg = CFG.replace(coordinates=True)
    net = Net(4, cfg)
    net.faults.latency = 0.020
    net.start_all()
    net.run_until(60)
    a, b = net.nodes[0], net.nodes[1]
    theirs = a.coordinates.of(b.name)
    assert theirs is not None and a.coordinates.samples > 20
    assert estimate_rtt(a.coordinates.own, theirs) == pytest.approx(0.040, rel=0.15)
    acks = [
        p for _, o in net.log if type(o).__name__ == "Send" for p in [o.payload]
        if any(type(m) is Ack for m in Codec(cfg).decode_packet(p))
    ]  # fmt: skip
    assert all(type(Codec(cfg).decode_packet(p)[1]) is CoordinateMsg for p in acks), (
        "a coordinate follows every ack"
    )


def test_nearest_orders_by_estimated_round_trip_and_leaves_out_the_unknown() -> None:
    coords = {
        "me": Coordinate.origin(),
        "far": Coordinate((0.1,) + (0.0,) * 7),
        "near": Coordinate((0.01,) + (0.0,) * 7),
    }
    found = nearest(coords.get, "me", ["far", "me", "near", "unknown"], 5)
    assert [name for name, _ in found] == ["near", "far"]
    assert found[0][1] == pytest.approx(0.01 + 2 * vivaldi.HEIGHT_MIN)
    assert nearest(coords.get, "me", coords, 1) == found[:1]
