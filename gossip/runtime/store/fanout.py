"""Asking several replicas at once: one request each, answers as they come.

Rules:
- This node's own replica answers in the caller's task, before anything is
  awaited (it does no I/O: spawning a task for it would only add work).
  Every other replica gets the request in its own task (the store service's
  nursery), bounded by the request timeout; a failure or timeout of one
  replica is a missing answer (an Answer with the error), never raised.
- Whether each replica answered at all is reported (`reached`, which feeds
  the majority rule), even when the caller no longer waits.
- The caller waits until `needed` answers count, all answered, or the
  timeout passed; calls still running go on in the background. With
  `linger`, once enough count the others get as long again as those took (at
  least LINGER_S).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import trio

from gossip.core.store.replica_ops import GetAnswer, KvOp, PutAnswer

LINGER_S = 0.01


class Replicas(Protocol):
    """What a fan-out needs of the store service."""

    def reached(self, name: str, ok: bool) -> None:
        """Whether a request to replica `name` got an answer (feeds the majority rule)."""
        ...

    def local(self, replica: str, op: KvOp) -> bytes | None:
        """This node's answer to `op` when `replica` is this node (None: another node)."""
        ...

    async def call(self, replica: str, op: KvOp) -> bytes: ...
    def spawn(self, fn: Callable[[], Awaitable[None]]) -> None: ...


@dataclass
class Answer:
    replica: str
    payload: bytes | None
    error: str | None
    parsed: GetAnswer | PutAnswer | None = None
    """The answer once decoded (decoded once, read several times)."""


async def fan_out(
    cluster: Replicas,
    replicas: Sequence[str],
    op: KvOp,
    needed: int,
    limit_s: float,
    counts: Callable[[Answer], bool] | None = None,
    *,
    valid: Callable[[Answer], str | None] | None = None,
    linger: bool = False,
) -> list[Answer]:
    """Send `op` to every replica; return once `needed` answers count (by default:
    any answer that is not an error), all answered, or the timeout passed. Calls
    still running go on in the background. `valid` names what is wrong with an
    answer (None: nothing), which then counts as failed. With `linger`, once
    enough answers count the others get as long again as those took (at least
    LINGER_S): a replica whose view of the members differs from this one may hold
    the newest version although the first answers did not."""
    send, recv = trio.open_memory_channel[Answer](len(replicas))

    def judged(name: str, payload: bytes) -> Answer:
        answer = Answer(name, payload, None)
        wrong = None if valid is None else valid(answer)
        if wrong:
            answer.payload, answer.error, answer.parsed = None, wrong, None
        return answer

    def task(name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            answer = Answer(name, None, "timeout")
            reached = False
            with trio.move_on_after(limit_s):
                try:
                    payload = await cluster.call(name, op)
                    reached = True
                    answer = judged(name, payload)
                except Exception as exc:  # any failure of one replica is a missing answer
                    answer = Answer(name, None, f"{type(exc).__name__}: {exc}")
            cluster.reached(name, reached)
            with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
                send.send_nowait(answer)  # the coordinator may have answered already

        return run

    here: list[Answer] = []
    for name in replicas:
        try:
            payload = cluster.local(name, op)
        except Exception as exc:  # as for any replica: a missing answer
            here.append(Answer(name, None, f"{type(exc).__name__}: {exc}"))
            cluster.reached(name, False)
            continue
        if payload is None:
            cluster.spawn(task(name))
        else:
            here.append(judged(name, payload))
            cluster.reached(name, True)
    answers: list[Answer] = []
    ok = 0
    started = trio.current_time()
    with recv, trio.move_on_after(limit_s + 0.5) as overall:
        for answer in here:
            answers.append(answer)
            ok += answer.error is None and (counts is None or counts(answer))
        while ok < needed and len(answers) < len(replicas):
            answer = await recv.receive()
            answers.append(answer)
            ok += answer.error is None and (counts is None or counts(answer))
        if linger and len(answers) < len(replicas):
            extra = max(LINGER_S, trio.current_time() - started)
            with trio.move_on_after(min(extra, overall.deadline - trio.current_time())):
                while len(answers) < len(replicas):
                    answers.append(await recv.receive())
    return answers
