"""Shrinking a failing schedule: drop faults while the failure persists.

Rules: a candidate still fails when a replay of it fails at least one of the
checkers the original failed. Removal goes by halves, then smaller chunks, then
single steps (delta debugging), each candidate one full replay, at most
`max_runs` replays. The seed and config stay the same, so the result replays
exactly with `gossip torture --schedule FILE`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from gossip.testing.torture.run import Result, run_torture
from gossip.testing.torture.schedule import Schedule, Step

Replay = Callable[[Schedule], Result]


def _replay(schedule: Schedule) -> Result:
    return run_torture(schedule.seed, schedule=schedule)


def shrink(
    schedule: Schedule,
    failing: Iterable[str],
    *,
    replay: Replay = _replay,
    max_runs: int = 40,
    report: Callable[[int, int], None] | None = None,
) -> tuple[Schedule, int]:
    """The smallest schedule found that still fails; and how many replays it took."""
    wanted = set(failing)
    runs = 0

    def fails(steps: list[Step]) -> bool:
        nonlocal runs
        runs += 1
        result = replay(Schedule(schedule.seed, schedule.config, tuple(steps)))
        if report is not None:
            report(runs, len(steps))
        return bool(wanted & set(result.failed))

    steps = list(schedule.steps)
    if steps and fails([]):
        return Schedule(schedule.seed, schedule.config, ()), runs
    chunks = 2
    while len(steps) > 1 and runs < max_runs:
        size = max(1, len(steps) // chunks)
        removed = False
        for start in range(0, len(steps), size):
            if runs >= max_runs:
                break
            candidate = steps[:start] + steps[start + size :]
            if candidate and fails(candidate):
                steps = candidate
                chunks = max(chunks - 1, 2)
                removed = True
                break
        if not removed:
            if size == 1:
                break
            chunks = min(chunks * 2, len(steps))
    return Schedule(schedule.seed, schedule.config, tuple(steps)), runs
