"""User events in seeded simulations: every live node delivers every event
exactly once under loss and a crash, and a run replays exactly."""

from __future__ import annotations

from gossip.sim.scenario import Scenario, run_scenario


def test_every_live_node_delivers_every_event_once_under_loss_and_a_crash() -> None:
    r = run_scenario(Scenario(nodes=30, duration=45, loss=0.1, crash=1, seed=5, events_per_s=5))
    assert r["events_fired"] > 50
    assert r["event_missing"] == 0
    assert r["event_duplicates"] == 0
    assert r["event_deliveries"] == r["events_fired"] * 29
    assert r["false_deaths"] == 0


def test_an_event_load_replays_from_its_seed() -> None:
    sc = Scenario(nodes=12, duration=30, loss=0.05, seed=9, events_per_s=4)
    a, b = run_scenario(sc), run_scenario(sc)
    for r in (a, b):
        del r["wall_s"], r["cpu_s"]
    assert a == b


def test_queries_to_everyone_are_acked_and_answered_by_nearly_all_under_loss() -> None:
    r = run_scenario(Scenario(nodes=30, duration=30, loss=0.05, seed=4, queries_per_s=1))
    assert r["queries"] >= 5
    # Each reply crosses the network once (twice over): a few may be lost.
    assert r["query_answer_share_mean"] >= 0.97
    assert r["query_ack_share_min"] >= 0.9


def test_relayed_replies_reach_the_asker_more_often_under_heavy_loss() -> None:
    def mean_answered(relay: int) -> float:
        sc = Scenario(nodes=30, duration=30, loss=0.2, seed=4, queries_per_s=1, query_relay=relay)
        share: float = run_scenario(sc)["query_answer_share_mean"]
        return share

    direct, relayed = mean_answered(0), mean_answered(2)
    assert relayed > direct
    assert relayed >= 0.99  # a reply is lost only if its 2 copies and 2 relays all are
