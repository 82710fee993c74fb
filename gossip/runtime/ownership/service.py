"""The ownership service: rendezvous work ownership inside an agent.

Rules:
- One task (run) owns the pure core Ownership (gossip.core.ownership.assignment): it feeds it
  the membership view after every member event, fires its timers, and turns its outputs into
  log lines (ownership_changed, item_acquired, item_released), subscriber callbacks and handler
  runs.
  The table is lazy: nothing is ranked (and numpy is not imported) until a lookup needs
  it; a rebuild that ranks partitions, and the first HTTP lookup, build in a worker thread
  (numpy releases the GIL; the build only reads immutable tables), so a 100-member rebuild
  never stalls the agent's probes; the state machine itself is only touched by this task.
- The agent's table has AGENT_PARTITIONS partitions (`[ownership] partitions`): a few MB
  instead of the core's 2^20 (~40 MB); it must be the same on every agent of a cluster.
- Lookups (owner, owners, owns, GET /v1/owner) read the current immutable table from any task.
- Declared items come from `[ownership] items` in the config file and `--item`, plus, for
  library users, an `item_source` polled every `source_interval` (store_prefix_source lists a
  key prefix of the replicated store); handlers from `--on-acquire` / `--on-release` (or
  on_acquire / on_release); see item_handlers.
- On a graceful leave every held item is released (reason `leaving`) before `left` is sent.
- TokenNotes from the core go to their members through NoteSender (notes.py); notes that
  arrive on the "ownership" channel feed the core's learn(). With `quorum` the core holds
  items only while this node sees a majority of the last known membership.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import structlog
import trio

from gossip.core.ownership.assignment import (
    DEFAULT_COALESCE_TIME,
    DEFAULT_SETTLE_TIME,
    ItemAcquired,
    ItemReleased,
    Ownership,
    OwnershipChanged,
    OwnershipOutput,
    TokenNote,
)
from gossip.core.ownership.partition_table import PartitionTable
from gossip.core.types import Address
from gossip.runtime.http import ApiError, ApiRequest, ApiResponse, Handler, RouteKey
from gossip.runtime.ownership.handlers import DEFAULT_TIMEOUT, HandlerJob, ItemHandlers
from gossip.runtime.ownership.issued import IssuedTokens
from gossip.runtime.ownership.notes import CHANNEL, NoteError, NoteSender, decode_notes, reach
from gossip.runtime.ownership.settings import (
    AGENT_PARTITIONS,
    ENV,
    FLAGS,
    SECTION,
    SettingsError,
    checked_items,
    command,
    partition_count,
    quorum_value,
    quorum_word,
    seconds,
)
from gossip.runtime.ownership.sources import ItemSource
from gossip.runtime.ownership.sources import store_prefix_source as store_prefix_source
from gossip.runtime.service import MemberEvent, PluginHost, Service, ServiceHost, StreamHandler
from gossip.runtime.settings import env_values, flag_values, layered

log = structlog.get_logger("gossip.ownership")

MAX_KEY_BYTES = 1024
MAX_N = 64
INLINE_SCORES = 1 << 18
"""A build scoring more (members x partitions) than this runs in a worker thread."""

ItemEvent = ItemAcquired | ItemReleased
Subscriber = Callable[[ItemEvent], None]
DEFAULT_SOURCE_INTERVAL = 10.0


def big(members: int, table: PartitionTable) -> bool:
    return members * table.partitions > INLINE_SCORES


class OwnershipService(Service):
    """Work ownership for one agent; also the library API (owner, owners, owns, subscribe)."""

    name = SECTION

    def __init__(
        self,
        *,
        items: Iterable[str] = (),
        on_acquire: str | None = None,
        on_release: str | None = None,
        settle_time: float = DEFAULT_SETTLE_TIME,
        coalesce_time: float = DEFAULT_COALESCE_TIME,
        handler_timeout: float = DEFAULT_TIMEOUT,
        partitions: int = AGENT_PARTITIONS,
        item_source: ItemSource | None = None,
        source_interval: float = DEFAULT_SOURCE_INTERVAL,
        quorum: bool = False,
    ) -> None:
        if not source_interval > 0:
            raise ValueError("source_interval must be > 0 seconds")
        self._items = checked_items(list(items), "items")
        self._sourced: list[str] = []
        self._item_source = item_source
        self._source_interval = source_interval
        self._commands = {"acquired": on_acquire, "released": on_release}
        self._settle_time = settle_time
        self._coalesce_time = coalesce_time
        self._handler_timeout = handler_timeout
        self._partitions = partitions
        self._quorum = quorum
        self._subscribers: list[Subscriber] = []
        self._dirty = True
        self._wake = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._ownership: Ownership | None = None

    # ---- Service hooks -------------------------------------------------------

    def attach(self, host: ServiceHost) -> None:
        super().attach(host)
        self.issued = IssuedTokens(host.data_dir)
        self._ownership = Ownership(
            host.name,
            settle_time=self._settle_time,
            coalesce_time=self._coalesce_time,
            partitions=self._partitions,
            items=self._items,
            quorum=self._quorum,
            probe_interval=host.config.probe_interval if self._quorum else 1.0,
            issued=self.issued.load(),
        )
        self.notes = NoteSender(host)
        self.handlers = ItemHandlers(
            host.name, self._commands, host.metrics, timeout=self._handler_timeout
        )
        self._changes = host.metrics.counter(
            "ownership_changes_total", "Ownership table rebuilds on this node"
        )
        host.metrics.gauge(
            "ownership_items_held",
            "Declared work items this node owns",
            read=lambda: {(): float(len(self.ownership.held()))},
        )
        host.metrics.gauge(
            "ownership_quorate",
            "1 while this node may hold items (always without --ownership-quorum), else 0",
            read=lambda: {(): float(self.ownership.quorate)},
        )
        host.metrics.gauge(
            "ownership_members",
            "Members in the ownership table (settled, not confirmed gone)",
            read=lambda: {(): float(len(self.ownership.table.members))},
        )

    def routes(self) -> Mapping[RouteKey, Handler]:
        return {("GET", "/v1/owner"): self._http_owner, ("GET", "/v1/ownership"): self._http_status}

    def stream_channels(self) -> Mapping[str, StreamHandler]:
        return {CHANNEL: self._on_notes}

    def member_event(self, event: MemberEvent) -> None:
        self._dirty = True
        self._wake.set()
        self.notes.member_changed()  # notes kept for a dead member go once it is back

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self.notes.run)
            if self._quorum:
                nursery.start_soon(self._check_quorum)
            if self._item_source is not None:
                nursery.start_soon(self._poll_source, self._item_source)
            task_status.started()
            try:
                await self._loop()
            finally:
                self.issued.close()

    async def before_leave(self) -> None:
        """Release every held item and let the release handlers finish (the agent bounds it)."""
        self.ownership.leave(self.host.wall_ms())
        self._drain()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.handlers.wait_idle)
            nursery.start_soon(self.notes.wait_idle)  # successors learn our tokens

    # ---- library API -----------------------------------------------------------

    @property
    def ownership(self) -> Ownership:
        if self._ownership is None:
            raise RuntimeError("the ownership service is not attached to an agent")
        return self._ownership

    def owner(self, key: bytes | str) -> str | None:
        """The member that owns `key` now (None before any member has settled)."""
        return self.ownership.table.owner(key)

    def owners(self, key: bytes | str, n: int) -> list[str]:
        """The top `n` members for `key`, best first: owner, then successors."""
        return self.ownership.table.owners(key, n)

    def owns(self, key: bytes | str) -> bool:
        return self.ownership.owns(key)

    def held(self) -> dict[str, int]:
        """Declared items this node holds, with their fencing tokens."""
        return self.ownership.held()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback(ItemAcquired | ItemReleased)` for every change; returns unsubscribe."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def set_items(self, items: Iterable[str]) -> None:
        """Replace the declared items (acquire/release at once what changed); names from an
        item source are kept on top of these."""
        self._items = checked_items(list(items), "items")
        self._declare()

    def _declare(self) -> None:
        names = list(dict.fromkeys([*self._items, *self._sourced]))
        self.ownership.set_items(trio.current_time(), names, self.host.wall_ms())
        self._drain()

    async def _poll_source(self, source: ItemSource) -> None:
        """Refresh the sourced items every interval; a failing source keeps the last names."""
        while True:
            try:
                with trio.fail_after(self._source_interval):
                    names = checked_items(list(await source()), "item_source")
            except Exception as exc:  # trio.TooSlowError included
                log.warning("ownership_item_source_failed", error=str(exc) or type(exc).__name__)
            else:
                if names != self._sourced:
                    self._sourced = names
                    self._declare()
            await trio.sleep(self._source_interval)

    # ---- the loop ----------------------------------------------------------------

    async def _loop(self) -> None:
        own = self.ownership
        while True:
            now = trio.current_time()
            if self._dirty:
                self._dirty = False
                own.observe(now, self.host.members(), self.host.wall_ms())
            deadline = own.next_deadline()
            if deadline is not None and deadline <= now:
                rebuild = own.due_rebuild(now)
                if rebuild is not None:
                    heavy = rebuild.builds_table and big(len(rebuild.members), own.table)
                    built = (
                        await trio.to_thread.run_sync(rebuild.build) if heavy else rebuild.build()
                    )
                    own.commit(rebuild, built, self.host.wall_ms())
                own.end_hold(now, self.host.wall_ms())
                self._drain()
                continue
            self._drain()
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await self._wake.wait()
            if self._wake.is_set():
                self._wake = trio.Event()

    async def _check_quorum(self) -> None:
        """While the core doubts the last known membership, ask each member of it directly,
        once per probe interval."""
        cfg = self.host.config
        limit = max(1.0, 2 * cfg.probe_timeout)
        while True:
            own = self.ownership
            if own.quorum_doubt:
                asked = sorted(own.known_members - {self.host.name})
                answered = await reach(self.host, asked, limit)
                own.reached(trio.current_time(), asked, answered, self.host.wall_ms())
                self._drain()
            await trio.sleep(cfg.probe_interval)

    def _drain(self) -> None:
        outputs = self.ownership.take_outputs()
        tokens = {o.item: o.token for o in outputs if isinstance(o, ItemAcquired)}
        if tokens:
            self.issued.record(tokens)  # durable before any handler or task sees them
        for out in outputs:
            self._emit(out)

    async def _on_notes(self, src: Address, body: bytes) -> bytes | None:
        try:
            notes = decode_notes(body)
        except NoteError as exc:
            log.warning("token_note_refused", source=f"{src[0]}:{src[1]}", reason=str(exc))
            return str(exc).encode()
        wall_ms = self.host.wall_ms()
        for item, token in notes:
            self.ownership.learn(item, token, wall_ms)
        self._drain()
        return b""

    def _emit(self, out: OwnershipOutput) -> None:
        if isinstance(out, TokenNote):
            self.notes.post(out)
            return
        if isinstance(out, OwnershipChanged):
            self._changes.inc()
            log.info(
                "ownership_changed",
                members=len(out.members),
                added=list(out.added),
                removed=list(out.removed),
                moved_partitions=out.moved_partitions,
                partitions_owned=out.partitions_owned,
            )
            return
        kind = "acquired" if isinstance(out, ItemAcquired) else "released"
        other = out.previous if isinstance(out, ItemAcquired) else out.successor
        log.info(f"item_{kind}", item=out.item, token=out.token, reason=out.reason, peer=other)
        for callback in list(self._subscribers):
            try:
                callback(out)
            except Exception:
                log.exception("ownership_subscriber_failed", item=out.item)
        if self._nursery is not None:
            self.handlers.submit(self._nursery, HandlerJob(kind, out.item, out.token, out.reason))

    # ---- HTTP ------------------------------------------------------------------------

    async def _http_owner(self, req: ApiRequest) -> ApiResponse:
        key = req.query.get("key")
        if not key:
            raise ApiError(400, "query parameter 'key' is required")
        if len(key.encode()) > MAX_KEY_BYTES:
            raise ApiError(400, f"key is longer than {MAX_KEY_BYTES} bytes")
        raw_n = req.query.get("n", "1")
        if (
            not (raw_n.isascii() and raw_n.isdigit() and len(raw_n) <= 3)
            or not 1 <= int(raw_n) <= MAX_N
        ):
            raise ApiError(400, f"n must be an integer from 1 to {MAX_N}")
        table = self.ownership.table
        if not table.members:
            raise ApiError(503, "no member has settled yet; try again after the settle time")
        if not table.materialized and big(len(table.members), table):
            await trio.to_thread.run_sync(table.materialize)  # off the event loop
        owners = table.owners(key, int(raw_n))
        return ApiResponse.json(
            {
                "key": key,
                "partition": table.partition_of(key),
                "owner": owners[0],
                "owners": owners,
                "members": len(table.members),
            }
        )

    async def _http_status(self, req: ApiRequest) -> ApiResponse:
        own = self.ownership
        return ApiResponse.json(
            {
                "node": self.host.name,
                "members": sorted(own.table.members),
                "items": {item: own.owner(item) for item in sorted(own.items)},
                "held": own.held(),
                "quorum": {
                    "on": self._quorum,
                    "quorate": own.quorate,
                    "known": sorted(own.known_members),
                },
            }
        )


# ---- plugin hooks (gossip agent) ---------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("work ownership")
    add = group.add_argument
    add("--item", action="append", metavar="NAME", help="declare a work item (repeatable)")
    add("--on-acquire", metavar="CMD", help="run CMD (sh -c) when this node acquires an item")
    add("--on-release", metavar="CMD", help="run CMD when this node releases an item")
    add("--settle-time", type=float, metavar="S", help="seconds before a new member takes items")
    add(
        "--ownership-quorum",
        action="store_true",
        default=None,
        help="hold items only while this agent sees a majority of the last known membership",
    )


def setup(agent: PluginHost, args: argparse.Namespace | None) -> None:
    agent.add_service(service_from_settings(agent.settings_section(SECTION), args))


def service_from_settings(
    section: Mapping[str, Any],
    args: argparse.Namespace | None,
    env: Mapping[str, str] | None = None,
) -> OwnershipService:
    """Build the service from the [ownership] table, the environment (only
    GOSSIP_OWNERSHIP_QUORUM) and flags: flags > environment > file; SettingsError if bad."""
    env = os.environ if env is None else env
    known = {"items", "on_acquire", "on_release", "settle_time", "coalesce_time", "handler_timeout"}
    known |= {"partitions", "quorum"}
    unknown = sorted(set(section) - known)
    if unknown:
        raise SettingsError(f"{SECTION}.{unknown[0]}", "unknown setting")
    items = checked_items(section.get("items", []), "items")
    flag_items = getattr(args, "item", None) or []
    items += checked_items(flag_items, "--item")
    from_env = {name: quorum_word(word) for name, word in env_values(env, ENV).items()}
    chosen = layered(flag_values(args, FLAGS), from_env, section)
    return OwnershipService(
        items=items,
        on_acquire=command(chosen.get("on_acquire")),
        on_release=command(chosen.get("on_release")),
        settle_time=seconds(chosen.get("settle_time"), "settle_time", DEFAULT_SETTLE_TIME),
        coalesce_time=seconds(section.get("coalesce_time"), "coalesce_time", DEFAULT_COALESCE_TIME),
        handler_timeout=seconds(section.get("handler_timeout"), "handler_timeout", DEFAULT_TIMEOUT),
        partitions=partition_count(section.get("partitions")),
        quorum=quorum_value(chosen.get("quorum")),
    )
