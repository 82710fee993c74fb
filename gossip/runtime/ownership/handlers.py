"""Operator handlers for work items: `--on-acquire CMD` / `--on-release CMD` as subprocesses.

Rules:
- A handler is a shell command run with /bin/sh -c; the item, fencing token, reason and event
  are passed only in environment variables (GOSSIP_ITEM, GOSSIP_TOKEN, GOSSIP_REASON,
  GOSSIP_EVENT, GOSSIP_NODE), never spliced into the command line.
- Handlers never block the agent: each runs in a background task, at most `concurrency` at a
  time, in its own process group, which is killed after `timeout` seconds. Only the last
  2 KiB of its output are kept, so a chatty handler cannot fill memory. The outcome is
  logged (handler_completed, handler_failed with exit_status, handler_timed_out) and counted.
- A graceful leave waits (bounded by the agent) for running handlers, releases included.
- Runs for one item happen strictly in submission order, one at a time: each item has a FIFO
  queue drained by one task, so an operator's script never sees two runs of one item overlap
  or a release overtake the acquire submitted before it (a lock would not do: trio wakes
  tasks started in one tick in random order).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog
import trio

from gossip.runtime.metrics import Registry

log = structlog.get_logger("gossip.ownership")

DEFAULT_TIMEOUT = 60.0
DEFAULT_CONCURRENCY = 8
_OUTPUT_LIMIT = 2048  # bytes of a failing handler's output kept in the log line


@dataclass(frozen=True)
class HandlerJob:
    event: str
    """acquired | released"""
    item: str
    token: int
    reason: str


class ItemHandlers:
    """Runs the configured commands for acquired/released items in the background."""

    def __init__(
        self,
        node: str,
        commands: Mapping[str, str | None],
        metrics: Registry,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self.node = node
        self.commands = dict(commands)
        self.timeout = timeout
        self._limiter = trio.CapacityLimiter(concurrency)
        self._queues: dict[str, deque[HandlerJob]] = {}
        """Jobs not yet started per item; an item has a key here exactly while its drain task
        runs."""
        self._runs = metrics.counter(
            "ownership_handler_runs_total",
            "Item handler runs by event and result",
            ("event", "result"),
        )
        self._pending = 0
        self._idle = trio.Event()
        self._idle.set()
        self.completed: list[tuple[HandlerJob, int | None]] = []
        """(job, exit status or None on timeout), newest last; bounded; for tests and status."""

    def submit(self, nursery: trio.Nursery, job: HandlerJob) -> None:
        if not self.commands.get(job.event):
            return
        self._pending += 1
        self._idle = trio.Event()
        queue = self._queues.get(job.item)
        if queue is not None:
            queue.append(job)  # its drain task runs it after the jobs before it
            return
        self._queues[job.item] = deque([job])
        nursery.start_soon(self._drain, job.item)

    async def wait_idle(self) -> None:
        """Until every submitted run has finished (the caller bounds the wait)."""
        await self._idle.wait()

    async def _drain(self, item: str) -> None:
        queue = self._queues[item]
        try:
            while queue:
                await self._run(queue.popleft())
        finally:
            del self._queues[item]
            self._pending -= len(queue)  # cancelled: the rest will not run
            if self._pending == 0:
                self._idle.set()

    async def _run(self, job: HandlerJob) -> None:
        command = self.commands[job.event]
        assert command is not None
        try:
            async with self._limiter:
                status = await self._execute(command, job)
        finally:
            self._pending -= 1
            if self._pending == 0:
                self._idle.set()
        self.completed.append((job, status))
        del self.completed[:-1000]

    async def _execute(self, command: str, job: HandlerJob) -> int | None:
        env = {
            **os.environ,
            "GOSSIP_EVENT": job.event,
            "GOSSIP_ITEM": job.item,
            "GOSSIP_TOKEN": str(job.token),
            "GOSSIP_REASON": job.reason,
            "GOSSIP_NODE": self.node,
        }
        fields = {"handler_event": job.event, "item": job.item, "token": job.token}
        start = trio.current_time()
        try:
            proc = await trio.lowlevel.open_process(
                ["/bin/sh", "-c", command],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so a timeout kills its children
            )
        except OSError as exc:
            log.error("handler_failed", exit_status=None, error=str(exc), **fields)
            self._runs.inc(labels={"event": job.event, "result": "error"})
            return -1
        try:
            with trio.move_on_after(self.timeout):
                output = await _tail(proc)
                status = await proc.wait()
                return self._finished(status, output, trio.current_time() - start, job, fields)
        finally:
            _kill_group(proc)  # no-op when it has exited; also runs if we are cancelled
            with trio.CancelScope(shield=True):
                await proc.wait()
        log.error("handler_timed_out", timeout_s=self.timeout, **fields)
        self._runs.inc(labels={"event": job.event, "result": "timeout"})
        return None

    def _finished(
        self, status: int, output: bytes, elapsed: float, job: HandlerJob, fields: dict[str, Any]
    ) -> int:
        if status != 0:
            log.error(
                "handler_failed",
                exit_status=status,
                duration_s=round(elapsed, 3),
                output=output.decode(errors="replace"),
                **fields,
            )
            self._runs.inc(labels={"event": job.event, "result": "failed"})
        else:
            log.info("handler_completed", exit_status=0, duration_s=round(elapsed, 3), **fields)
            self._runs.inc(labels={"event": job.event, "result": "ok"})
        return status


async def _tail(proc: trio.Process) -> bytes:
    """Read the handler's output to its end, keeping only the last _OUTPUT_LIMIT bytes."""
    assert proc.stdout is not None
    kept = bytearray()
    async for chunk in proc.stdout:
        kept += chunk
        del kept[:-_OUTPUT_LIMIT]
    return bytes(kept)


def _kill_group(proc: trio.Process) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # the group we created for this handler only
