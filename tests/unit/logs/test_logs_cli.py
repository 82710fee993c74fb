"""`gossip logs` end to end in-process: timeline filters, JSON, report page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gossip.cli import main
from tests.unit.logs.logs_fixtures import write_cluster


@pytest.fixture
def logs_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "logs"
    folder.mkdir()
    write_cluster(folder)
    with (folder / "n1.log").open("a") as f:
        f.write("this line is broken\n")
    return folder


def test_timeline_filters_by_member_and_event(
    logs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["logs", "timeline", str(logs_dir), "--member", "n3", "--event", "member_failed"]) == 0
    )
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 4
    assert all("member_failed" in ln and "member=n3" in ln for ln in lines)
    assert "\x1b[" not in out  # not a terminal: no colour
    assert "skipped 1 bad lines (not_json=1)" in err


def test_timeline_is_time_ordered_across_files_and_colours_on_request(
    logs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["logs", "timeline", str(logs_dir), "--json", "--node", "n1", "--node", "n2"]) == 0
    rows = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert {r["node"] for r in rows} == {"n1", "n2"}
    stamps = [r["timestamp"] for r in rows]
    assert stamps == sorted(stamps)
    assert (
        main(["logs", "timeline", str(logs_dir), "--event", "member_failed", "--color", "always"])
        == 0
    )
    assert "\x1b[31m" in capsys.readouterr().out


def test_timeline_member_filter_includes_scenario_actions_on_it(
    logs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["logs", "timeline", str(logs_dir), "--member", "n4", "--event", "fault_injected"])
        == 0
    )
    out = capsys.readouterr().out
    assert "[scenario]" in out and "action=pause" in out


def test_summary_json_has_detections(logs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs", "summary", str(logs_dir), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["detections"][0]["target"] == "n3"
    assert data["read"]["skipped"] == {"not_json": 1}
    assert main(["logs", "summary", str(logs_dir)]) == 0
    text = capsys.readouterr().out
    assert "kill   n3" in text and "False suspicions: 1" in text


def test_report_writes_one_self_contained_page(
    logs_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "report.html"
    assert (
        main(["logs", "report", str(logs_dir), "--html", str(page), "--title", "<run & check>"])
        == 0
    )
    html = page.read_text()
    assert html.count("<svg") == 5
    assert "&lt;run &amp; check&gt;" in html and "<run & check>" not in html
    assert "src=" not in html and "href=" not in html and "<script" not in html
    assert "#d1393b" in html  # some observer saw a member dead
    assert "kill n3" in html


def test_a_missing_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["logs", "summary", str(tmp_path / "nope.log")]) == 2
    assert "no such file" in capsys.readouterr().err
