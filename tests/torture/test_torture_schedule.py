"""Schedule files are untrusted input: bounded, checked, with errors that say where."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gossip.testing.torture.config import FAULT_KINDS, TortureConfig
from gossip.testing.torture.run import run_torture
from gossip.testing.torture.schedule import FORMAT, ScheduleError, generate, load, parse


def _file(steps: list[object], **config: object) -> bytes:
    return json.dumps(
        {"format": FORMAT, "seed": 1, "config": {"nodes": 3, **config}, "steps": steps}
    ).encode()


def test_a_generated_schedule_survives_its_own_file_format() -> None:
    schedule = generate(3, TortureConfig(duration=300.0, fault_every=5.0))
    assert {s.action for s in schedule.steps} >= {"kill", "partition", "clock"}
    assert parse(schedule.dumps().encode()) == schedule


def test_every_fault_ends_by_the_end_of_the_run() -> None:
    config = TortureConfig(duration=100.0, fault_every=2.0)
    assert all(s.ends <= config.duration + 1e-9 for s in generate(5, config).steps)


def test_the_emulators_words_are_read_as_in_scenario_files() -> None:
    step = {"at": 5, "action": "partition", "groups": [["n1"], ["n2", "n3"]], "for": 10}
    (parsed,) = parse(_file([step])).steps
    assert parsed.groups == (("n1",), ("n2", "n3")) and parsed.lasts == 10.0


@pytest.mark.parametrize(
    ("steps", "config", "says"),
    [
        ([{"at": 1, "action": "meteor"}], {}, "action"),
        ([{"at": 1, "action": "kill", "target": "n9", "for": 1}], {}, "target"),
        ([{"at": 1, "action": "kill", "target": "n1", "extra": 1}], {}, "unknown keys"),
        ([{"at": 1e9, "action": "kill", "target": "n1"}], {}, ".at"),
        ([{"at": 1, "action": "partition", "groups": [["n1"], ["n1"]]}], {}, "groups"),
        ([{"at": 1, "action": "oneway", "link": ["n1", "n1"]}], {}, "link"),
        ([], {"nodes": "5"}, "config.nodes"),
        ([], {"faults": ["meteor"]}, "faults"),
    ],
)
def test_a_bad_schedule_is_one_error_naming_the_place(
    steps: list[object], config: dict[str, object], says: str
) -> None:
    with pytest.raises(ScheduleError, match=says.replace(".", r"\.")):
        parse(_file(steps, **config))


def test_garbage_is_refused_cleanly() -> None:
    for data in (b"\xff", b"[]", b'{"format": "other"}', b"{" * 100_000):
        with pytest.raises(ScheduleError):
            parse(data)


def test_every_kind_can_be_drawn() -> None:
    for kind in FAULT_KINDS:
        schedule = generate(1, TortureConfig(duration=200.0, faults=(kind,), fault_every=10.0))
        assert schedule.steps and {s.action for s in schedule.steps} == {kind}


SAVED = sorted((Path(__file__).parent / "schedules").glob("*.json"))


BESIDE_THE_POINT: dict[str, set[str]] = {}
"""Checkers a saved schedule may fail for a reason other than the bug it was saved for
(file stem -> checker names); none today."""


@pytest.mark.parametrize("path", SAVED, ids=[p.stem for p in SAVED])
def test_the_saved_failure_schedules_now_pass_every_checker(path: Path) -> None:
    """Shrunk schedules of store and ownership bugs found before they were fixed
    (docs/testing.md): each failed a checker then, and each replay must pass now."""
    schedule = load(path)
    assert f"seed{schedule.seed}" in path.stem
    assert len(schedule.steps) <= 2  # shrunk: one fault, or two that fail only together
    result = run_torture(schedule.seed, schedule=schedule)
    failed = set(result.failed) - BESIDE_THE_POINT.get(path.stem, set())
    assert not failed, {n: result.verdicts[n].violations[:3] for n in sorted(failed)}
