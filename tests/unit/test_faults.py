"""The shared fault model: reachability, the fixed draw order, bounds."""

from __future__ import annotations

import random

import pytest

from gossip.faults import STREAM_RETRIES, TCP_RTO, FaultModel


def test_a_model_without_faults_draws_nothing_and_delivers_once_after_the_latency() -> None:
    rng = random.Random(1)
    before = rng.getstate()
    model = FaultModel[int](latency=0.004)
    assert model.datagram_delays(rng, 0, 1) == (0.004,)
    assert model.stream_delay(rng, 0, 1) == 0.004
    assert rng.getstate() == before


def test_the_draws_follow_the_documented_order_loss_duplicate_then_each_copy() -> None:
    model = FaultModel[str](
        loss=0.2, latency=0.01, jitter=0.02, duplicate=0.5, reorder=0.5, reorder_window=(0.1, 0.3)
    )
    rng, twin = random.Random(7), random.Random(7)
    for _ in range(500):
        got = model.datagram_delays(rng, "a", "b")
        if twin.random() < 0.2:
            expected: tuple[float, ...] = ()
        else:
            copies = 2 if twin.random() < 0.5 else 1
            delays = []
            for _ in range(copies):
                delay = 0.01 + twin.random() * 0.02
                if twin.random() < 0.5:
                    delay += twin.uniform(0.1, 0.3)
                delays.append(delay)
            expected = tuple(delays)
        assert got == expected


def test_a_links_own_loss_overrides_the_models() -> None:
    model = FaultModel[int](loss=1.0, link_loss={(0, 1): 0.0})
    rng = random.Random(2)
    assert model.datagram_delays(rng, 1, 0) == ()
    assert model.datagram_delays(rng, 0, 1) == (0.001,)


def test_partitions_cuts_and_downs_decide_reachability() -> None:
    model = FaultModel[str]()
    model.partition(["a", "b"], ["c"])
    assert model.reachable("a", "b") and not model.reachable("a", "c")
    assert model.reachable("d", "c") and model.reachable("a", "d"), "unnamed hosts reach all"
    model.heal()
    model.cut("a", "b")
    assert not model.reachable("a", "b") and model.reachable("b", "a")
    model.down.add("c")
    assert not model.reachable("c", "a") and not model.reachable("a", "c")
    model.heal()
    assert model.reachable("a", "b") and not model.reachable("a", "c"), "heal keeps downs"


def test_a_stream_pays_an_rto_per_lost_segment_up_to_its_retry_limit() -> None:
    model = FaultModel[int](loss=1.0, latency=0.001)
    worst = 0.001 + TCP_RTO * (2**STREAM_RETRIES - 1)
    assert model.stream_delay(random.Random(3), 0, 1) == pytest.approx(worst)


@pytest.mark.parametrize(
    "bad",
    [
        {"loss": 1.5},
        {"duplicate": -0.1},
        {"link_loss": {(0, 1): 2.0}},
        {"latency": -1.0},
        {"reorder_window": (0.2, 0.1)},
    ],
)
def test_out_of_range_settings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FaultModel[int](**bad)  # type: ignore[arg-type]


def test_a_paused_host_stays_reachable_and_draws_as_before_until_it_resumes() -> None:
    model = FaultModel[str](loss=0.3, jitter=0.01)
    quiet = FaultModel[str](loss=0.3, jitter=0.01)
    model.pause("b")
    assert model.paused == {"b"}
    assert model.reachable("a", "b") and model.reachable("b", "a")
    rng, twin = random.Random(3), random.Random(3)
    for _ in range(50):
        assert model.datagram_delays(rng, "a", "b") == quiet.datagram_delays(twin, "a", "b")
    model.heal()
    assert model.paused == {"b"}, "heal ends partitions and cuts, not pauses"
    assert model.resume("b") and not model.resume("b")
    assert model.paused == set()
