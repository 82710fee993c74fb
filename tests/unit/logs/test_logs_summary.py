"""The summary turns synthetic cluster logs into the latencies they encode."""

from __future__ import annotations

from pathlib import Path

import pytest

from gossip.logs.records import load
from gossip.logs.summary import summarize
from gossip.logs.views import build_views, faults_from
from tests.unit.logs.logs_fixtures import line, member, write_cluster


@pytest.fixture
def logs_dir(tmp_path: Path) -> Path:
    write_cluster(tmp_path)
    return tmp_path


def test_faults_pair_injection_with_clearing(logs_dir: Path) -> None:
    logs = load([logs_dir])
    faults = faults_from(logs.records)
    assert [(f.action, f.target) for f in faults] == [
        ("loss", "*"),
        ("kill", "n3"),
        ("pause", "n4"),
    ]
    pause = faults[2]
    assert pause.end is not None
    assert pause.end - pause.start == pytest.approx(6.0)
    assert faults[1].end is None


def test_detection_latency_is_measured_from_the_scenario_fault(logs_dir: Path) -> None:
    summary = summarize(load([logs_dir]))
    kill, pause = summary.detections
    assert (kill.action, kill.target, kill.at) == ("kill", "n3", 10.0)
    assert kill.observers == 4
    assert (kill.suspected.first, kill.suspected.median, kill.suspected.last) == (0.6, 1.15, 1.8)
    assert (kill.failed.first, kill.failed.last, kill.failed.count) == (3.6, 4.8, 4)
    assert kill.settled_after == 4.8  # the last observer's failure verdict
    assert pause.observers == 3  # n3 was dead by then
    assert pause.suspected.count == 3
    assert pause.failed.count == 2
    assert pause.failed.first == 4.5
    assert pause.settled_after is None  # n5 still held it suspect when it came back
    assert pause.recovered_after == 0.4  # all saw it alive 0.4 s after the resume


def test_false_suspicions_are_those_no_fault_explains(logs_dir: Path) -> None:
    summary = summarize(load([logs_dir]))
    assert [(v.observer, v.member, v.time) for v in summary.false_suspicions] == [("n1", "n2", 2.0)]
    assert summary.false_failures == []


def test_without_a_scenario_refuted_verdicts_count_as_false(logs_dir: Path) -> None:
    (logs_dir / "scenario.log").unlink()
    summary = summarize(load([logs_dir]))
    assert summary.detections == []
    # n2's suspicion, and n4's pause (heard alive again), are all false here.
    falsely_suspected = {(v.observer, v.member) for v in summary.false_suspicions}
    assert ("n1", "n2") in falsely_suspected
    assert ("n1", "n4") in falsely_suspected
    assert {(v.observer, v.member) for v in summary.false_failures} == {("n1", "n4"), ("n2", "n4")}
    # n3 was never heard again: its failure is not false.
    assert all(v.member != "n3" for v in summary.false_failures)


def test_transitions_list_what_each_observer_saw(logs_dir: Path) -> None:
    summary = summarize(load([logs_dir]))
    assert summary.transitions["n4"]["n5"] == [
        (0.5, "joined"),
        (21.2, "suspect"),
        (26.5, "refuted"),
    ]
    assert summary.transitions["n4"]["n1"][-2:] == [(24.5, "failed"), (26.3, "joined")]


def test_views_agree_at_the_end_and_counts_are_per_node(logs_dir: Path) -> None:
    summary = summarize(load([logs_dir]))
    assert summary.views_agree_at_end
    assert summary.settled_at == 26.4
    assert summary.counts["ownership_changed"] == {"n1": 1}
    assert summary.counts["kv_repaired"] == {"n2": 1}
    assert summary.counts["self_refuted"] == {"n2": 1, "n4": 1}


def test_a_killed_observer_view_ends_at_the_kill(logs_dir: Path) -> None:
    logs = load([logs_dir])
    views = build_views(logs.records, faults_from(logs.records))
    n3_of_n1 = views.of("n1", "n3")
    assert len(n3_of_n1) == 1
    assert n3_of_n1[0].end - views.start == pytest.approx(10.0)
    n4_of_n1 = [i.state for i in views.of("n4", "n1")]
    assert n4_of_n1 == ["alive", "suspect", "dead", "alive"]


def test_disagreeing_views_at_the_end_are_reported(logs_dir: Path) -> None:
    # n5 never hears that n4 is back.
    path = logs_dir / "n5.log"
    lines = [ln for ln in path.read_text().splitlines() if "member_refuted" not in ln]
    path.write_text("\n".join(lines) + "\n")
    summary = summarize(load([logs_dir]))
    assert summary.views_agree_at_end  # suspect still counts as up
    lines = [
        ln.replace('"suspect"', '"dead"').replace("member_suspected", "member_failed")
        if '"n4"' in ln
        else ln
        for ln in lines
    ]
    path.write_text("\n".join(lines) + "\n")
    assert not summarize(load([logs_dir])).views_agree_at_end


def test_the_summary_is_json_ready(logs_dir: Path) -> None:
    import json

    data = summarize(load([logs_dir])).to_dict()
    text = json.dumps(data)
    assert json.loads(text)["detections"][0]["suspected"]["first"] == 0.6


def test_a_partition_is_detected_across_sides_and_its_heal_timed(tmp_path: Path) -> None:
    rows = [line(0, "agent_started", n) for n in ("a", "b", "c")]
    rows += [member(0.2, "member_joined", o, m, "alive") for o in "abc" for m in "abc" if o != m]
    # {a} | {b, c} from 1 to 6: each side fails the other, then all rejoin.
    rows += [member(2.0, "member_suspected", "a", m, "suspect") for m in "bc"]
    rows += [member(4.0, "member_failed", "a", m, "dead") for m in "bc"]
    rows += [member(2.5, "member_suspected", o, "a", "suspect") for o in "bc"]
    rows += [member(4.5, "member_failed", o, "a", "dead") for o in "bc"]
    rows += [member(7.0, "member_joined", "a", m, "alive") for m in "bc"]
    rows += [member(7.5, "member_joined", o, "a", "alive") for o in "bc"]
    rows += [
        line(0, "scenario_started"),
        line(1, "fault_injected", action="partition", target="a|b,c", groups=[["a"], ["b", "c"]]),
        line(6, "fault_cleared", action="heal", target="a|b,c"),
        line(10, "scenario_finished"),
    ]
    (tmp_path / "all.log").write_text("\n".join(rows) + "\n")
    summary = summarize(load([tmp_path]))
    (cut,) = summary.detections
    assert (cut.action, cut.observers) == ("partition", 3)
    assert (cut.suspected.count, cut.suspected.first, cut.suspected.last) == (4, 1.0, 1.5)
    assert (cut.failed.count, cut.failed.first, cut.failed.last) == (4, 3.0, 3.5)
    assert cut.settled_after is None  # the two sides never agree while cut
    assert cut.recovered_after == 1.5  # the last rejoin, 1.5 s after the heal
    assert summary.false_suspicions == [] and summary.views_agree_at_end


def test_an_agent_that_stops_mid_scenario_and_error_lines_are_reported(logs_dir: Path) -> None:
    assert summarize(load([logs_dir])).early_stops == []  # n5 stops as the scenario ends
    with (logs_dir / "n2.log").open("a") as f:
        f.write(line(15.0, "stream_failed", "n2", level="error") + "\n")
        f.write(line(15.5, "agent_stopped", "n2") + "\n")
    summary = summarize(load([logs_dir]))
    assert [(v.time, v.observer) for v in summary.early_stops] == [(15.5, "n2")]
    assert summary.counts["errors"] == {"n2": 1}
