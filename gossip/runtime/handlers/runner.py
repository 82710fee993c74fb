"""Running the event handlers: one queue and one task per handler.

Rules:
- Each handler gets the events its filters match, in the order the agent saw
  them, one run at a time: a handler's queue is drained by its own task, so a
  slow handler delays only itself. A full queue (QUEUE_SIZE) drops the event
  for that handler, with a log line and a metric.
- A run is `/bin/sh -c CMD` in its own process group, with GOSSIP_EVENT
  (member-join, ..., user), GOSSIP_SELF_NAME, GOSSIP_SELF_ADDRESS and
  GOSSIP_TAG_<KEY> (this agent's tags, the key upper-cased, non-alphanumerics
  as `_`); a user event adds GOSSIP_USER_EVENT and GOSSIP_USER_LTIME, a
  query GOSSIP_QUERY_NAME and GOSSIP_QUERY_LTIME, and a query handler's
  output (when it exits 0) is the answer sent back to the asker.
  Standard input holds the affected member, one line `NAME<TAB>ADDRESS<TAB>
  STATE<TAB>k=v,...`, or a user event's payload.
- After `timeout` seconds the whole group is killed. A failure, a timeout or
  a command that cannot start is logged (event_handler_failed,
  event_handler_timed_out) and counted in event_handler_runs_total{result};
  the agent carries on. Only the last OUTPUT_LIMIT bytes of output are kept,
  or for a query MAX_ANSWER_BYTES: a longer answer is refused and logged.
- set_specs() replaces the handlers (SIGHUP): the old ones finish the events
  already queued for them, then stop.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Awaitable, Callable, Mapping, Sequence

import structlog
import trio

from gossip.runtime.handlers.spec import KIND_NAMES, HandlerSpec
from gossip.runtime.metrics import Registry
from gossip.runtime.notify import fmt_address
from gossip.runtime.queryanswers import MAX_ANSWER_BYTES
from gossip.runtime.service import MemberEvent

log = structlog.get_logger("gossip.handlers")

QUEUE_SIZE = 1024
OUTPUT_LIMIT = 2048
DEFAULT_TIMEOUT = 30.0

SelfView = Callable[[], tuple[str, str, Mapping[str, str]]]
"""This agent's (name, address, tags) now."""
Respond = Callable[[MemberEvent, bytes], Awaitable[None]]
"""Answer a query event with a handler's output."""


class EventHandlers:
    def __init__(
        self,
        self_view: SelfView,
        metrics: Registry,
        timeout: float,
        respond: Respond | None = None,
    ) -> None:
        self._self_view = self_view
        self._respond = respond
        self.timeout = timeout
        self._queues: list[tuple[HandlerSpec, trio.MemorySendChannel[MemberEvent]]] = []
        self._pending: list[HandlerSpec] = []
        self._nursery: trio.Nursery | None = None
        self._runs = metrics.counter(
            "event_handler_runs_total", "Event handler runs, by result.", ("result",)
        )
        self.finished: list[tuple[str, str, int | None]] = []
        """(command, GOSSIP_EVENT, exit status or None on timeout), newest last; bounded."""
        self.runs = 0
        """Runs finished so far."""
        self._progress = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self.set_specs(self._pending)
            task_status.started()
            await trio.sleep_forever()

    def set_specs(self, specs: Sequence[HandlerSpec]) -> None:
        if self._nursery is None:
            self._pending = list(specs)
            return
        for _, send in self._queues:
            send.close()  # its task runs what is queued, then ends
        self._queues = []
        for spec in specs:
            send, recv = trio.open_memory_channel[MemberEvent](QUEUE_SIZE)
            self._queues.append((spec, send))
            self._nursery.start_soon(self._drain, spec, recv)

    def submit(self, event: MemberEvent) -> None:
        for spec, send in self._queues:
            if not spec.matches(event.kind, event.name):
                continue
            try:
                send.send_nowait(event)
            except trio.WouldBlock:
                self._runs.inc(labels={"result": "dropped"})
                log.warning("event_handler_dropped", command=spec.text, reason="queue_full")

    async def _drain(self, spec: HandlerSpec, recv: trio.MemoryReceiveChannel[MemberEvent]) -> None:
        async with recv:
            async for event in recv:
                status = await self._execute(spec, event)
                self.finished.append((spec.command, KIND_NAMES[event.kind], status))
                del self.finished[:-1000]
                self.runs += 1
                self._progress.set()
                self._progress = trio.Event()

    async def wait_runs(self, runs: int) -> None:
        """Until `runs` runs have finished in all (the caller bounds the wait)."""
        while self.runs < runs:
            await self._progress.wait()

    def _environment(self, event: MemberEvent) -> tuple[dict[str, str], bytes]:
        name, address, tags = self._self_view()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOSSIP_TAG_")}
        env.update(
            GOSSIP_EVENT=KIND_NAMES[event.kind], GOSSIP_SELF_NAME=name, GOSSIP_SELF_ADDRESS=address
        )
        for key, value in tags.items():
            env["GOSSIP_TAG_" + re.sub(r"[^A-Z0-9]", "_", key.upper())] = value
        if event.kind in ("user", "query"):
            prefix = "GOSSIP_USER" if event.kind == "user" else "GOSSIP_QUERY"
            env[f"{prefix}_{'EVENT' if event.kind == 'user' else 'NAME'}"] = event.name
            env[f"{prefix}_LTIME"] = str(event.detail.get("ltime", ""))
            return env, _payload(event.detail)
        m = event.member
        if m is None:
            return env, f"{event.name}\n".encode()
        tag_text = ",".join(f"{k}={v}" for k, v in sorted(m.tags.items()))
        line = f"{m.name}\t{fmt_address(m.address)}\t{m.state.label}\t{tag_text}\n"
        return env, line.encode()

    async def _execute(self, spec: HandlerSpec, event: MemberEvent) -> int | None:
        env, stdin = self._environment(event)
        fields = {"command": spec.text, "gossip_event": env["GOSSIP_EVENT"], "name": event.name}
        start = trio.current_time()
        try:
            proc = await trio.lowlevel.open_process(
                ["/bin/sh", "-c", spec.command],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a timeout kills its children
            )
        except OSError as exc:
            log.error("event_handler_failed", exit_status=None, error=str(exc), **fields)
            self._runs.inc(labels={"result": "error"})
            return -1
        try:
            with trio.move_on_after(self.timeout):
                keep = MAX_ANSWER_BYTES + 1 if event.kind == "query" else OUTPUT_LIMIT
                output, size = await _feed_and_tail(proc, stdin, keep)
                status = await proc.wait()
                elapsed = round(trio.current_time() - start, 3)
                if status != 0:
                    text = output[-OUTPUT_LIMIT:].decode(errors="replace")
                    log.error("event_handler_failed", exit_status=status, output=text, **fields)
                    self._runs.inc(labels={"result": "failed"})
                else:
                    log.info("event_handler_completed", duration_s=elapsed, **fields)
                    self._runs.inc(labels={"result": "ok"})
                    if event.kind == "query" and self._respond is not None:
                        await self._answer(event, output, size, fields)
                return status
        finally:
            _kill_group(proc)  # a no-op once it has exited; also runs when cancelled
            with trio.CancelScope(shield=True):
                await proc.wait()
        log.error("event_handler_timed_out", timeout_s=self.timeout, **fields)
        self._runs.inc(labels={"result": "timeout"})
        return None

    async def _answer(
        self, event: MemberEvent, output: bytes, size: int, fields: dict[str, str]
    ) -> None:
        assert self._respond is not None
        try:
            if size > MAX_ANSWER_BYTES:
                raise ValueError(
                    f"a query response takes {size} bytes; the limit is {MAX_ANSWER_BYTES}"
                )
            await self._respond(event, output)
        except ValueError as exc:
            log.error("event_handler_failed", exit_status=0, error=str(exc), **fields)
            self._runs.inc(labels={"result": "answer_refused"})


async def _feed_and_tail(proc: trio.Process, data: bytes, keep: int) -> tuple[bytes, int]:
    """Write `data` to the handler's stdin (a handler that does not read it
    is fine), then read its output to the end: its last `keep` bytes, and
    how many there were in all."""
    assert proc.stdin is not None and proc.stdout is not None
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        async with proc.stdin:
            if data:
                await proc.stdin.send_all(data)
    kept = bytearray()
    size = 0
    async for chunk in proc.stdout:
        size += len(chunk)
        kept += chunk
        del kept[:-keep]
    return bytes(kept), size


def _payload(detail: Mapping[str, object]) -> bytes:
    """A user event's payload back from its JSON form (text or base64)."""
    text, encoded = detail.get("payload"), detail.get("payload_base64")
    if isinstance(text, str):
        return text.encode()
    return base64.b64decode(encoded) if isinstance(encoded, str) else b""


def _kill_group(proc: trio.Process) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # the group created for this run only
