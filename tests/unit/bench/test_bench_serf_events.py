"""The pure figures of the events-and-queries comparison with Serf."""

from __future__ import annotations

from gossip.bench.serf_events import (
    Delivery,
    QueryRun,
    Side,
    delivery,
    last_first_run,
    median_ratios,
    parse_handler_runs,
    parse_serf_reply,
    query_run,
    render_table,
)


def test_handler_lines_parse_and_malformed_ones_are_skipped() -> None:
    text = "1.5 bench0\ngarbage\n2.25 bench1\nnot-a-time bench2\n3 a b\n" + "9" * 10_000
    assert parse_handler_runs(text) == [(1.5, "bench0"), (2.25, "bench1")]


def test_serf_query_output_yields_acks_and_responses_only() -> None:
    assert parse_serf_reply("Ack from 'serf-3'\n") == ("ack", "serf-3")
    assert parse_serf_reply("Response from 'serf-12': serf-12\n") == ("response", "serf-12")
    assert parse_serf_reply("Query 'benchq0' dispatched") is None
    assert parse_serf_reply("Total Acks: 20") is None


def test_delivery_counts_duplicates_and_missing_per_agent_and_event() -> None:
    runs = {
        "a": [(1.0, "e0"), (1.1, "e1")],
        "b": [(1.0, "e0"), (1.2, "e0")],  # e0 twice, e1 never
    }
    assert delivery(runs, ["e0", "e1"]) == Delivery(
        expected=4, exactly_once=2, duplicates=1, missing=1
    )


def test_event_is_timed_to_the_last_agents_first_run() -> None:
    runs = {"a": [(5.0, "e0"), (9.0, "e0")], "b": [(6.0, "e0")]}
    assert last_first_run(runs, "e0") == 6.0
    assert last_first_run(runs, "e1") is None


def test_query_counts_each_node_once_and_times_the_last_answer() -> None:
    replies = [
        (10.1, "ack", "a"),
        (10.2, "response", "a"),
        (10.3, "response", "a"),  # a second copy
        (10.4, "ack", "b"),
        (10.9, "response", "b"),
    ]
    run = query_run(10.0, replies, expected=3)
    assert (run.acks, run.answers, run.expected) == (2, 2, 3)
    assert run.to_last_answer_s is not None and abs(run.to_last_answer_s - 0.9) < 1e-9
    assert query_run(10.0, [(10.1, "ack", "a")], expected=1).to_last_answer_s is None


def test_table_and_ratios_survive_a_json_round_trip() -> None:
    gossip = Side("gossip", 20, 10.0, [0.2, 0.4, None], Delivery(60, 59, 0, 1),
                  [QueryRun(20, 20, 19, 0.5)], 1234.4)  # fmt: skip
    serf = Side("serf", 20, 10.0, [0.4, 0.8], Delivery(40, 40, 0, 0), [QueryRun(20, 18, 20, 1.0)])
    back = [Side.from_json(s.to_json()) for s in (gossip, serf)]
    assert back == [gossip, serf]
    table = render_table(back).splitlines()
    assert table[1].split() == [
        "20", "10%", "gossip", "0.300", "0.400", "1", "59/60", "0", "1",
        "0.500", "0.500", "19/20", "20/20", "1234",
    ]  # fmt: skip
    assert table[2].split()[-1] == "n/a"
    assert median_ratios(back) == ["N=20 loss 10%: median gossip / serf: event 0.50, query 0.50"]
