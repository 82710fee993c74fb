"""Long-poll watches on the store: wait until a key or a prefix differs from what the caller saw.

Rules: a watch compares, it never relies on a notification being delivered. It re-reads the
current state every POLL_S seconds (a quorum read for a key, the merged listing of every alive
member for a prefix) and answers as soon as that state differs from the version or index the
caller passed, or at the end of its wait with the unchanged state. So a watcher that comes back
with its last version after a restart or a partition gets the current value if it changed: it
never misses the last value, though it may skip values written in between.
A key's version is its version text (a tombstone has one too); an absent key's is ABSENT.
A prefix's index is a digest of the (key, version) pairs of its live keys: any put or delete
under the prefix changes it. Every agent can serve a watch, replica of the key or not: it reads
through the coordinator like any other read.
Bounds: at most MAX_WATCHERS open watches per agent (429 above), a wait of 1..MAX_WAIT_S seconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

import structlog
import trio

from gossip.core.store.replica_ops import Listed
from gossip.runtime.http import ApiError

ABSENT = "none"
POLL_S = 0.25
DEFAULT_WAIT_S = 30.0
MAX_WAIT_S = 300.0
MAX_WATCHERS = 32  # below the API's connection cap, so a flood of watches leaves room for writes

T = TypeVar("T")
log = structlog.get_logger(__name__)


def prefix_index(items: Sequence[Listed]) -> str:
    """A digest of the live keys and their versions: equal listings give equal indexes."""
    h = hashlib.sha256()
    for item in sorted(items, key=lambda i: i.key):
        v = item.version
        h.update(f"{item.key}\0{v.wall}.{v.counter}@{v.node}\0".encode())
    return h.hexdigest()[:24]


async def follow_prefix(
    listing: Callable[[str, int], Awaitable[tuple[list[Listed], bool]]],
    prefix: str,
    limit: int = 1000,
    poll: float = POLL_S,
) -> AsyncIterator[list[Listed]]:
    """The library form of a prefix watch: each new state of the live keys under `prefix`,
    the current one first. A read that fails (no quorum, a partition) is retried at the next
    poll, so the iterator goes on and still ends up on the last state."""
    seen: str | None = None
    while True:
        try:
            records, _ = await listing(prefix, limit)
        except Exception as exc:  # the store's errors: try again, never skip the last state
            log.info("kv_watch_read_failed", prefix=prefix, error=str(exc))
        else:
            index = prefix_index(records)
            if index != seen:
                seen = index
                yield records
        await trio.sleep(poll)


def parse_wait(raw: str | None) -> float:
    if raw is None:
        return DEFAULT_WAIT_S
    try:
        wait = float(raw)
    except ValueError:
        raise ApiError(400, f"wait must be a number of seconds, 1..{MAX_WAIT_S:g}") from None
    if not 1.0 <= wait <= MAX_WAIT_S:
        raise ApiError(400, f"wait must be 1..{MAX_WAIT_S:g} seconds")
    return wait


class WatchGate:
    """Counts the open watches of one agent and refuses those above the bound."""

    def __init__(self, limit: int = MAX_WATCHERS) -> None:
        self.limit = limit
        self.open = 0

    @contextmanager
    def admit(self) -> Iterator[None]:
        if self.open >= self.limit:
            raise ApiError(429, f"too many open watches on this agent (at most {self.limit})")
        self.open += 1
        try:
            yield
        finally:
            self.open -= 1


async def wait_for_change(
    read: Callable[[], Awaitable[T]],
    marker: Callable[[T], str],
    seen: str,
    wait: float,
    poll: float = POLL_S,
) -> tuple[T, bool]:
    """Re-read until the state's marker differs from `seen` (True) or `wait` runs out (False).
    The answer is always a fresh read, so it is current when the wait ends either way."""
    deadline = trio.current_time() + wait
    while True:
        state = await read()
        if marker(state) != seen:
            return state, True
        left = deadline - trio.current_time()
        if left <= 0:
            return state, False
        await trio.sleep(min(poll, left))
