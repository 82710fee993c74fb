"""Handlers of one item run in the order they were submitted, whatever trio's scheduler does."""

from __future__ import annotations

import trio

from gossip.runtime.metrics import Registry
from gossip.runtime.ownership.handlers import HandlerJob, ItemHandlers

COMMANDS = {"acquired": "true", "released": "true"}


class RecordingHandlers(ItemHandlers):
    """Runs no process: records each start and yields to the scheduler a few times."""

    def __init__(self) -> None:
        super().__init__("n1", COMMANDS, Registry(), concurrency=4)
        self.started: list[HandlerJob] = []
        self.running: set[str] = set()
        self.overlaps = 0

    async def _execute(self, command: str, job: HandlerJob) -> int | None:
        self.overlaps += job.item in self.running
        self.running.add(job.item)
        self.started.append(job)
        for _ in range(job.token % 3 + 1):
            await trio.lowlevel.checkpoint()
        self.running.discard(job.item)
        return 0


async def test_jobs_submitted_in_one_tick_run_per_item_in_submission_order() -> None:
    handlers = RecordingHandlers()
    items = [f"item-{i}" for i in range(40)]
    submitted: list[HandlerJob] = []
    async with trio.open_nursery() as nursery:
        for tick in range(10):
            for token, item in enumerate(items):
                for event in ("acquired", "released"):
                    job = HandlerJob(event, item, tick * 100 + token, "test")
                    handlers.submit(nursery, job)
                    submitted.append(job)
            await trio.lowlevel.checkpoint()
        with trio.fail_after(10):
            await handlers.wait_idle()
    assert len(handlers.started) == len(submitted)
    for item in items:
        assert [j for j in handlers.started if j.item == item] == [
            j for j in submitted if j.item == item
        ]
    assert handlers.overlaps == 0
