"""Token notes between agents: the wire format, a sender that never blocks the ownership loop,
and the quorum's reachability check.

Rules:
- A batch is CBOR [[item, token], ...] on the "ownership" stream channel: at most NOTE_BATCH
  pairs, items 1..MAX_ITEM_BYTES-byte strings, tokens integers 1..MAX_TOKEN. Anything else
  is refused whole (NoteError), before any of it is applied.
- post() only queues: notes for one member merge (the highest token per item wins) and one
  task delivers them, a batch per request, members in parallel.
- A batch that fails (unreachable, timeout, refused) is tried again after 1, 2, 4 and then
  every 8 s while the member is alive or suspect, for up to GIVE_UP_S: a one-way cut can
  outlast a few retries, and the new owner must hear of the tokens issued meanwhile once
  it heals.
- While the member is dead (or reaped from the view) the batch is kept, not sent: a member
  declared dead behind a cut comes back and must fence above the tokens issued while it
  was away. A membership change (member_changed) wakes it, and it is sent at once when
  the member is alive or suspect again. It counts as idle while it waits, so a graceful
  leave does not wait for members that cannot answer.
- A batch is dropped with a log line (token_note_failed) when its member left the cluster
  or GIVE_UP_S is up: a lost note leaves the recipient on its own token.
- An empty batch is a reachability check (reach): a member that answers it within the
  limit is reachable now, whatever the membership view says.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import cbor2
import structlog
import trio

from gossip.core.ownership.assignment import TokenNote
from gossip.core.types import MemberState
from gossip.runtime.ownership.settings import MAX_ITEM_BYTES
from gossip.runtime.service import ServiceHost, StreamError

log = structlog.get_logger("gossip.ownership")

CHANNEL = "ownership"
NOTE_BATCH = 1000
MAX_TOKEN = (1 << 63) - 1
RETRY_DELAYS = (1.0, 2.0, 4.0)
RETRY_EVERY = 8.0
GIVE_UP_S = 300.0
LEFT = "the member left the cluster"
AWAY = "the member is dead"


class NoteError(ValueError):
    pass


def encode_notes(pairs: Iterable[tuple[str, int]]) -> bytes:
    return cbor2.dumps([[item, token] for item, token in pairs])


def decode_notes(body: bytes) -> list[tuple[str, int]]:
    try:
        raw = cbor2.loads(body)
    except Exception as exc:  # cbor2 raises several types for garbage
        raise NoteError("not CBOR") from exc
    if not isinstance(raw, list) or len(raw) > NOTE_BATCH:
        raise NoteError(f"a batch is a list of at most {NOTE_BATCH} notes")
    out: list[tuple[str, int]] = []
    for pair in raw:
        if not isinstance(pair, list) or len(pair) != 2:
            raise NoteError("a note is [item, token]")
        item, token = pair
        if not isinstance(item, str) or not 0 < len(item.encode()) <= MAX_ITEM_BYTES:
            raise NoteError(f"items are 1..{MAX_ITEM_BYTES}-byte strings")
        if type(token) is not int or not 0 < token <= MAX_TOKEN:
            raise NoteError("tokens are integers 1..2^63-1")
        out.append((item, token))
    return out


class NoteSender:
    """Delivers TokenNotes to their members in the background, with bounded retries."""

    def __init__(self, host: ServiceHost) -> None:
        self.host = host
        self._pending: dict[str, dict[str, int]] = {}
        self._wake = trio.Event()
        self._busy = 0
        self._idle = trio.Event()
        self._idle.set()
        self._changed = trio.Event()
        self._batches = host.metrics.counter(
            "ownership_token_note_batches_total",
            "Token note batches by result: sent, or failed after every retry",
            ("result",),
        )

    def post(self, note: TokenNote) -> None:
        notes = self._pending.setdefault(note.to, {})
        notes[note.item] = max(note.token, notes.get(note.item, 0))
        self._idle = trio.Event()
        self._wake.set()

    def member_changed(self) -> None:
        """A membership change: batches waiting for a dead member look at it again."""
        self._changed.set()
        self._changed = trio.Event()

    async def wait_idle(self) -> None:
        """Until every posted note was delivered or dropped (the caller bounds the wait)."""
        await self._idle.wait()

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            while True:
                await self._wake.wait()
                self._wake = trio.Event()
                pending, self._pending = self._pending, {}
                for member, notes in pending.items():
                    pairs = sorted(notes.items())
                    for start in range(0, len(pairs), NOTE_BATCH):
                        self._busy += 1
                        nursery.start_soon(self._deliver, member, pairs[start : start + NOTE_BATCH])
                self._maybe_idle()

    async def _deliver(self, member: str, pairs: list[tuple[str, int]]) -> None:
        try:
            body = encode_notes(pairs)
            give_up = trio.current_time() + GIVE_UP_S
            attempt = 0
            while True:
                why = await self._send(member, body)
                if why is None:
                    self._batches.inc(labels={"result": "sent"})
                    return
                delay = RETRY_DELAYS[attempt] if attempt < len(RETRY_DELAYS) else RETRY_EVERY
                attempt += 1
                if why == AWAY:
                    await self._wait_back(member, give_up)
                    attempt = 0  # back (or out of time): a fresh retry schedule
                    delay = 0.0
                if why == LEFT or trio.current_time() + delay >= give_up:
                    self._batches.inc(labels={"result": "failed"})
                    log.warning("token_note_failed", peer=member, notes=len(pairs), reason=why)
                    return
                await trio.sleep(delay)
        finally:
            self._busy -= 1
            self._maybe_idle()

    async def _wait_back(self, member: str, give_up: float) -> None:
        """Until `member` is alive or suspect again, or `give_up`; idle meanwhile."""
        self._busy -= 1
        self._maybe_idle()
        try:
            with trio.move_on_at(give_up):
                while self._state(member) in (None, MemberState.DEAD):
                    await self._changed.wait()
        finally:
            self._busy += 1
            if self._idle.is_set():
                self._idle = trio.Event()

    def _maybe_idle(self) -> None:
        if not self._busy and not self._pending:
            self._idle.set()

    def _state(self, member: str) -> MemberState | None:
        info = self.host.member(member)
        return None if info is None else info.state

    async def _send(self, member: str, body: bytes) -> str | None:
        """None when delivered, else why not."""
        info = self.host.member(member)
        if info is not None and info.state is MemberState.LEFT:
            return LEFT
        if info is None or info.state is MemberState.DEAD:
            return AWAY
        try:
            reply = await self.host.request(info.address, CHANNEL, body)
        except StreamError as exc:
            return exc.reason
        return None if reply == b"" else (reply or b"no answer").decode(errors="replace")[:200]


PING = encode_notes([])


async def reach(host: ServiceHost, names: Sequence[str], limit: float) -> set[str]:
    """The members among `names` that answer an empty batch within `limit` seconds."""
    answered: set[str] = set()

    async def ask(name: str) -> None:
        info = host.member(name)
        if info is None:
            return
        with trio.move_on_after(limit):
            try:
                if await host.request(info.address, CHANNEL, PING) == b"":
                    answered.add(name)
            except StreamError:
                pass

    async with trio.open_nursery() as nursery:
        for name in names:
            nursery.start_soon(ask, name)
    return answered
