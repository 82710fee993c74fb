"""Asking several replicas at once: one request each, answers as they come.

Rules:
- This node's own replica answers in the caller's task, before anything is
  awaited (it does no I/O). Every other replica's request is sent with a
  function that takes its outcome (no task of its own): an answer, a
  failure, or nothing within the request timeout. A failure or a timeout is
  a missing answer (an Answer with the error), never raised; an answer that
  comes after the timeout is ignored.
- Whether each replica answered at all is reported (`reached`, which feeds
  the majority rule), even when the caller no longer waits: an answer that
  comes later is taken by its callback, and a replica still owed one at the
  timeout is then reported as not reached (`after`: one timer for the whole
  store, not a task per request).
- The caller waits until `needed` answers count, all answered, or the
  timeout passed. With `linger`, once enough count the others get as long
  again as those took (at least LINGER_S).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import trio

from gossip.core.store.replica_ops import GetAnswer, KvOp, PutAnswer

LINGER_S = 0.01

Outcome = Callable[[bytes | None, Exception | None], None]
"""Takes a replica's answer (None: it sent no reply) or the error that stopped it."""


class Replicas(Protocol):
    """What a fan-out needs of the store service."""

    def reached(self, name: str, ok: bool) -> None:
        """Whether a request to replica `name` got an answer (feeds the majority rule)."""
        ...

    def local(self, replica: str, op: KvOp) -> bytes | None:
        """This node's answer to `op` when `replica` is this node (None: another node)."""
        ...

    def send(self, replica: str, op: KvOp, outcome: Outcome) -> None:
        """Send `op` to another node's replica; `outcome` is called once, later."""
        ...

    def after(self, when: float, fn: Callable[[], None]) -> None:
        """Call `fn` once trio's clock reaches `when` (never, once the store stopped)."""
        ...


@dataclass
class Answer:
    replica: str
    payload: bytes | None
    error: str | None
    parsed: GetAnswer | PutAnswer | None = None
    """The answer once decoded (decoded once, read several times)."""


class _Round:
    """One fan-out's answers in the order they came, and the replicas still owed one."""

    def __init__(self, cluster: Replicas, valid: Callable[[Answer], str | None] | None) -> None:
        self._cluster = cluster
        self._valid = valid
        self.answers: list[Answer] = []
        self.owed: dict[str, None] = {}
        self._wake = trio.Event()

    def answered(self, name: str, payload: bytes) -> None:
        answer = Answer(name, payload, None)
        wrong = None if self._valid is None else self._valid(answer)
        if wrong:
            answer.payload, answer.error, answer.parsed = None, wrong, None
        self._add(answer, True)

    def failed(self, name: str, error: str) -> None:
        self._add(Answer(name, None, error), False)

    def outcome(self, name: str) -> Outcome:
        self.owed[name] = None

        def took(reply: bytes | None, error: Exception | None) -> None:
            if name not in self.owed:
                return  # timed out already
            del self.owed[name]
            if error is not None:
                self.failed(name, f"{type(error).__name__}: {error}")
            elif reply is None:
                self.failed(name, "KvOpError: no reply")
            else:
                try:
                    self.answered(name, reply)
                except Exception as exc:  # a bad answer is a missing one
                    self.failed(name, f"{type(exc).__name__}: {exc}")

        return took

    def expire(self) -> None:
        """The timeout passed: every replica still owed an answer failed."""
        owed, self.owed = self.owed, {}
        for name in owed:
            self.failed(name, "timeout")

    async def next(self) -> None:
        """Wait for the next answer (one waiter at a time)."""
        self._wake = trio.Event()
        await self._wake.wait()

    def _add(self, answer: Answer, reached: bool) -> None:
        self._cluster.reached(answer.replica, reached)
        self.answers.append(answer)
        self._wake.set()


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
    any answer that is not an error), all answered, or the timeout passed.
    Replicas still owed an answer are watched in the background. `valid` names
    what is wrong with an answer (None: nothing), which then counts as failed.
    With `linger`, once enough answers count the others get as long again as
    those took (at least LINGER_S): a replica whose view of the members differs
    from this one may hold the newest version although the first answers did not."""
    started = trio.current_time()
    deadline = started + limit_s
    got = _Round(cluster, valid)
    for name in replicas:
        try:
            payload = cluster.local(name, op)
            if payload is None:
                cluster.send(name, op, got.outcome(name))
            else:
                got.answered(name, payload)
        except Exception as exc:  # as for any replica: a missing answer
            got.owed.pop(name, None)
            got.failed(name, f"{type(exc).__name__}: {exc}")
    seen = ok = 0
    try:
        with trio.move_on_at(deadline):
            while True:
                for answer in got.answers[seen:]:
                    ok += answer.error is None and (counts is None or counts(answer))
                seen = len(got.answers)
                if ok >= needed or seen >= len(replicas):
                    break
                await got.next()
        if linger and seen < len(replicas):
            extra = max(LINGER_S, trio.current_time() - started)
            with trio.move_on_at(min(trio.current_time() + extra, deadline)):
                while len(got.answers) < len(replicas):
                    await got.next()
            seen = len(got.answers)
    finally:
        if trio.current_time() >= deadline:
            got.expire()
            seen = len(got.answers)
        elif got.owed:
            cluster.after(deadline, got.expire)
    return got.answers[:seen]
