"""A fault run is a function of its seed: same seed, same history and verdicts."""

from __future__ import annotations

import functools
from pathlib import Path

from gossip.testing.torture.config import TortureConfig
from gossip.testing.torture.run import Result, run_torture
from gossip.testing.torture.schedule import load

CONFIG = TortureConfig(
    duration=30.0, fault_every=4.0, rate=20.0, horizon=10.0, reap=8.0, gc_interval=2.0
)


@functools.cache
def _first() -> Result:
    return run_torture(7, CONFIG)


def test_one_seed_twice_gives_the_same_history_byte_for_byte_and_the_same_verdicts() -> None:
    first = _first()
    second = run_torture(7, CONFIG)
    assert first.figures["faults_applied"] >= 3  # the run did exercise faults
    assert len(first.history) > 500
    assert "\n".join(first.history) == "\n".join(second.history)
    assert {n: v.to_json() for n, v in first.verdicts.items()} == {
        n: v.to_json() for n, v in second.verdicts.items()
    }


def test_another_seed_gives_another_history() -> None:
    assert _first().history != run_torture(8, CONFIG).history


def test_a_saved_schedule_replays_the_run_exactly(tmp_path: Path) -> None:
    original = _first()
    path = tmp_path / "schedule.json"
    original.schedule.save(path)
    replayed = run_torture(0, schedule=load(path))
    assert replayed.seed == 7
    assert replayed.history == original.history
