"""The fault harness applies each step at its time, whatever the steps before it do."""

from __future__ import annotations

from typing import Any

from gossip.testing.torture.config import TortureConfig
from gossip.testing.torture.run import run_torture
from gossip.testing.torture.schedule import Schedule, Step


def test_a_graceful_stop_does_not_delay_the_faults_after_it() -> None:
    # A stop waits for the leave (seconds); the checkers judge a wipe by its scheduled
    # time, so the wipe must begin then, not when the stop is done.
    config = TortureConfig(duration=12.0, rate=5.0, horizon=10.0, reap=8.0)
    steps = (
        Step(at=1.0, action="pause", lasts=5.0, target="n1"),  # its leave has to wait
        Step(at=2.0, action="stop", lasts=6.0, target="n1"),
        Step(at=2.2, action="wipe", lasts=3.0, target="n2"),
    )
    seen: list[Any] = []
    result = run_torture(
        1, schedule=Schedule(1, config, steps), hook=lambda cluster, node: seen.append(cluster)
    )
    began = {a["begin"]["action"]: a["t"] for a in seen[0].applied if "begin" in a}
    assert abs(began["wipe"] - 2.2) < 0.05, began
    assert result.ok, result.failed
