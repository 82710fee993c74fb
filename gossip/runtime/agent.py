"""The Agent: one membership Node inside a trio shell, plus services and the control API.

Rules: exactly one task (the core task) calls the Node's mutating methods;
other tasks hand it closures through a bounded inbox. After every input the
core task drains the outputs: Send and OpenStream are carried out, notifications
become log lines, metrics and MemberEvents. Reads (members(), member()) are
synchronous and safe from any task. Everything runs in the nursery of `serve`,
which returns after `stop()` (or a completed `leave()` when asked to stop).
The core task tells the Node how late its timers fire (Node.loop_lagged):
that lateness is the event-loop stall Lifeguard's health score answers.
"""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import structlog
import trio

from gossip.core.membership import outputs as o
from gossip.core.membership.config import Config
from gossip.core.membership.node import Node
from gossip.core.types import Address, MemberInfo
from gossip.hostport import parse_hostport
from gossip.runtime import framing as fr
from gossip.runtime import gcstats
from gossip.runtime.api import control_routes
from gossip.runtime.clock import SystemClock, WallClock
from gossip.runtime.dnsresolver import SystemResolver
from gossip.runtime.history import MemberHistory
from gossip.runtime.http import Handler, HttpServer, RouteKey
from gossip.runtime.identity import IdentityKeeper
from gossip.runtime.insight import InsightService, nearest_live
from gossip.runtime.joiner import advertise_address
from gossip.runtime.loopwatch import LagWatch
from gossip.runtime.metrics import Registry
from gossip.runtime.network import Network, SocketNetwork, families
from gossip.runtime.notify import Notifier, fmt_address
from gossip.runtime.queries import MAX_TIMEOUT_S, QueryRouter, QueryStream
from gossip.runtime.seeds import Resolver, resolve_seeds
from gossip.runtime.service import (
    DatagramHandler,
    MemberEvent,
    Service,
    StreamHandler,
)
from gossip.runtime.settings import AgentSettings
from gossip.runtime.snapshot import SAVE_INTERVAL_S, MemberSnapshot
from gossip.runtime.streams import StreamChannels
from gossip.runtime.subscribe import Subscribers, Subscription
from gossip.runtime.tagfile import TagChange, TagRecord, start_tags
from gossip.security.sealing import PlainSealer, Sealer, SealRejected

T = TypeVar("T")
INBOX_SIZE = 1024
MEMBER_CHANNEL = "member"

log = structlog.get_logger("gossip.agent")


class Agent:
    def __init__(
        self,
        settings: AgentSettings,
        *,
        network: Network | None = None,
        sealer: Sealer | None = None,
        rng: random.Random | None = None,
        clock: WallClock | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self.settings = settings
        self.clock: WallClock = clock or SystemClock()
        self._network: Network = network or SocketNetwork()
        self._resolver: Resolver = resolver or SystemResolver()
        self._sealer: Sealer = sealer or PlainSealer()
        self._rng = rng or random.Random(secrets.randbits(64))
        self._services: list[Service] = []
        self._routes: dict[RouteKey, Handler] = {}
        self._stream_handlers: dict[str, StreamHandler] = {}
        self._dgram_handlers: dict[str, DatagramHandler] = {}
        self.metrics = Registry()
        gcstats.install(self.metrics)
        self._node: Node | None = None
        self._identity: IdentityKeeper | None = None
        self._config: Config = settings.core_config()
        self._inbox_send, self._inbox_recv = trio.open_memory_channel[Callable[[float], None]](
            INBOX_SIZE
        )
        self._subscribers = Subscribers()
        self._queries = QueryRouter()
        self._nursery: trio.Nursery | None = None
        self._started = False
        self.api_address: Address | None = None
        self.joined = trio.Event()
        self._resolving = False
        self.left = trio.Event()
        self.leaving = False
        self._stopped = trio.Event()
        self._stop_requested = trio.Event()
        # Bound here (not only via contextvars) so lines logged from a caller's task,
        # e.g. leave() called by an embedding program, still name this agent.
        self.log = log.bind(node=settings.name)
        self._notifier = Notifier(self.log, self.metrics, self.members, lambda: self.health)
        self.streams = StreamChannels(
            self._network,
            lambda: self._sealer,
            self._stream_handlers,
            max_bytes=self._config.max_stream_bytes,
            timeout=self._config.stream_timeout,
            streams=self._notifier.streams,
            rejected=self._notifier.streams_rejected,
        )
        self._stream_handlers[MEMBER_CHANNEL] = self._member_stream_request
        self._tag_record = TagRecord(settings.data_dir)
        self._snapshot = MemberSnapshot(settings.data_dir)
        history = MemberHistory(settings.name, self.wall_ms, lambda: self.health)
        self._notifier.history = history
        # Built in, not a Service: it has no task to run, and an extra task
        # start would change how every agent's start-up interleaves.
        insight = InsightService(self, history)
        insight.attach(self)
        for (method, path), handler in insight.routes().items():
            self.add_route(method, path, handler)
        self._stream_handlers.update(insight.stream_channels())

    # ---- set-up before serve() -------------------------------------------------

    def add_service(self, service: Service) -> None:
        if self._started:
            raise RuntimeError("add services before the agent starts")
        service.attach(self)
        for key, handler in service.routes().items():
            _add_unique(self._routes, key, handler, f"route {key}")
        for name, stream_handler in service.stream_channels().items():
            fr.encode_request(name, b"")  # validates the name
            _add_unique(self._stream_handlers, name, stream_handler, f"stream channel {name}")
        for name, dgram_handler in service.datagram_channels().items():
            fr.encode_channel_datagram(name, b"")
            _add_unique(self._dgram_handlers, name, dgram_handler, f"datagram channel {name}")
        self._services.append(service)

    def set_sealer(self, sealer: Sealer) -> None:
        """Set before start; the core reserves `sealer.overhead` bytes per datagram."""
        if self._started:
            raise RuntimeError("set the sealer before the agent starts")
        self._sealer = sealer

    @property
    def sealer(self) -> Sealer:
        """The sealer in use (its keyring, if any, holds the cluster secret)."""
        return self._sealer

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        _add_unique(self._routes, (method, path), handler, f"route {method} {path}")

    @property
    def routes(self) -> Mapping[RouteKey, Handler]:
        return self._routes

    @property
    def nursery(self) -> trio.Nursery | None:
        """The agent's nursery while it runs (for background work of API handlers)."""
        return self._nursery

    # ---- ServiceHost ---------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def address(self) -> Address:
        if self._node is None:
            raise RuntimeError("the agent has not started")
        return self._node.address

    def wall_ms(self) -> int:
        """This agent's wall clock (milliseconds since the epoch)."""
        return self.clock.wall_ms()

    @property
    def config(self) -> Config:
        return self._config

    @property
    def data_dir(self) -> Path | None:
        return self.settings.data_dir

    @property
    def seeds(self) -> Sequence[str]:
        return tuple(self.settings.join)

    @property
    def node_id(self) -> str:
        return self._identity.identity.node_id if self._identity else ""

    def settings_section(self, name: str) -> Mapping[str, Any]:
        return self.settings.section(name)

    @property
    def health(self) -> int:
        return self._node.health if self._node is not None else 0

    @property
    def protocol_version(self) -> int:
        """The wire version this agent speaks now (0 before it starts)."""
        return self._node.protocol_version if self._node is not None else 0

    @property
    def incarnation(self) -> int:
        return self._node.incarnation if self._node is not None else 0

    def members(self) -> list[MemberInfo]:
        return self._node.members() if self._node is not None else []

    def member(self, name: str) -> MemberInfo | None:
        return self._node.member(name) if self._node is not None else None

    def self_info(self) -> MemberInfo | None:
        return self.member(self.name)

    def nearest(self, n: int) -> list[tuple[str, float]]:
        return nearest_live(self._node, n) if self._node is not None else []

    async def request(self, to: Address, channel: str, body: bytes) -> bytes | None:
        return await self.streams.request(to, channel, body)

    async def send_datagram(self, to: Address, channel: str, body: bytes) -> None:
        await self._send(to, fr.encode_channel_datagram(channel, body))

    def subscribe(self, maxsize: int = 256) -> Subscription:
        """Membership events from now on; a subscriber that falls behind is cut off."""
        return self._subscribers.subscribe(maxsize)

    # ---- commands --------------------------------------------------------------------

    async def call(self, fn: Callable[[Node, float], T]) -> T:
        """Run `fn(node, now)` in the core task and return its result."""
        done = trio.Event()
        box: list[T] = []

        failed: list[Exception] = []

        def run(now: float) -> None:
            assert self._node is not None
            try:
                box.append(fn(self._node, now))
            except Exception as exc:  # the caller's error (a refused input), not the core task's
                failed.append(exc)
            done.set()

        await self._inbox_send.send(run)
        await done.wait()
        if failed:
            raise failed[0]
        return box[0]

    async def join(self, seeds: Sequence[str]) -> int:
        """One join attempt to `seeds` (HOST:PORT or srv:NAME, resolved now); returns
        how many addresses they resolved to."""
        addresses = await self._resolve(seeds)
        if addresses:
            await self.call(lambda node, now: node.join(now, addresses))
        return len(addresses)

    async def _resolve(self, seeds: Sequence[str]) -> list[Address]:
        """The seeds' addresses in the families our socket reaches, ourselves left out."""
        own = self.address
        reach = families(self.settings.bind[0])
        return [a for a in await resolve_seeds(seeds, self._resolver, reach) if a != own]

    async def set_tags(self, tags: Mapping[str, str]) -> None:
        await self.call(lambda node, now: node.set_tags(now, dict(tags)))

    async def event(self, name: str, payload: bytes = b"", coalesce: bool = True) -> None:
        """Fire a user event to every member (docs/user-events.md); ValueError
        when the name and payload exceed the limit."""

        def fire(node: Node, now: float) -> str:
            try:
                node.user_event(now, name, payload, coalesce)
            except ValueError as exc:  # refused here, not raised in the core task
                return str(exc)
            return ""

        refused = await self.call(fire)
        if refused:
            raise ValueError(refused)

    async def start_query(
        self,
        name: str,
        payload: bytes = b"",
        *,
        node: str = "*",
        tags: Mapping[str, str] | None = None,
        ack: bool = True,
        wait_s: float = 5.0,
    ) -> QueryStream:
        """Ask the members whose name and tags match these globs; read their
        acks and answers from the stream until its deadline, then close it.
        ValueError when the query is refused (size, filters, too many open)."""
        if not 0 < wait_s <= MAX_TIMEOUT_S:
            raise ValueError(f"wait_s: must be in (0, {MAX_TIMEOUT_S:g}] seconds")

        def start(node_: Node, now: float) -> QueryStream | str:
            try:
                qid = node_.query(
                    now, name, payload, node=node, tags=tags or {}, ack=ack, timeout=wait_s
                )
            except ValueError as exc:  # refused here, not raised in the core task
                return str(exc)
            return self._queries.open(qid, now + wait_s)  # before any answer is drained

        stream = await self.call(start)
        if isinstance(stream, str):
            raise ValueError(stream)
        return stream

    async def query(self, name: str, payload: bytes = b"", **filters: Any) -> list[o.QueryAnswered]:
        """start_query, collected until the deadline."""
        stream = await self.start_query(name, payload, **filters)
        answers = []
        try:
            while (answer := await stream.next()) is not None:
                answers.append(answer)
        finally:
            stream.close()
        return answers

    async def respond_query(self, event: MemberEvent, payload: bytes) -> None:
        """Answer a `query` event (ValueError if the answer is too large)."""
        qid = int(event.detail["qid"])
        address = parse_hostport(str(event.detail["address"]), 0)

        def respond(node: Node, now: float) -> str:
            try:
                node.respond(now, qid, address, payload)
            except ValueError as exc:
                return str(exc)
            return ""

        refused = await self.call(respond)
        if refused:
            raise ValueError(refused)

    async def update_tags(self, change: TagChange) -> dict[str, str]:
        """Set and delete some tags (tagfile.py), atomically against other tag
        changes; recorded in the data directory so a restart keeps them.
        ValueError if the resulting tags are over the limits."""

        def apply(node: Node, now: float) -> dict[str, str]:
            tags = change.apply(node.tags)
            node.set_tags(now, tags)
            return tags

        tags = await self.call(apply)
        self._tag_record.record(change)
        return tags

    def configured_tags(self, configured: Mapping[str, str]) -> dict[str, str]:
        """The tags that flags and config ask for, with the recorded live changes over them."""
        return start_tags(configured, self._tag_record.change)

    async def force_leave(self, name: str, *, prune: bool = False) -> None:
        """Mark a failed member left everywhere, or with `prune` forget it
        everywhere now (core/membership/forceleave.py); ValueError says why not."""
        why = await self.call(lambda node, now: node.force_leave(now, name, prune=prune))
        if why is not None:
            raise ValueError(why)

    async def leave(self) -> None:
        """Graceful leave: services' before_leave, then `left` disseminated (bounded)."""
        if self.leaving:
            await self.left.wait()
            return
        self.leaving = True
        self.log.info("agent_leaving")
        for service in self._services:
            with trio.move_on_after(service.leave_timeout):
                try:
                    await service.before_leave()
                except Exception:
                    self.log.exception("service_before_leave_failed", service=service.name)
        await self.call(lambda node, now: node.leave(now))
        with trio.move_on_after(self._config.leave_timeout + 1.0):
            await self.left.wait()
        self.left.set()

    def reload_services(self, settings: AgentSettings) -> None:
        """SIGHUP: hand each service its config table as read again."""
        for service in self._services:
            service.reload(settings.section(service.name))

    def stop(self) -> None:
        """Stop at once (no leave): `serve` returns shortly."""
        self._stop_requested.set()

    async def leave_and_stop(self) -> None:
        await self.leave()
        self.stop()

    # ---- running ----------------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if self._started:
            raise RuntimeError("an Agent serves once")
        self._started = True
        structlog.contextvars.bind_contextvars(node=self.name)
        self._config = self._config.replace(
            packet_overhead=self._config.packet_overhead
            + self._sealer.overhead
            + fr.DATAGRAM_OVERHEAD
        )
        udp = await self._network.open_datagram(self.settings.bind)
        self._udp = udp
        try:
            bind = (self.settings.bind[0], udp.local_address[1])
            if self.settings.advertise is not None:
                host, port = self.settings.advertise
                address = (host, port or bind[1])  # port 0: the one we bound
            else:
                address = advertise_address(bind)
            self._identity = IdentityKeeper(self.data_dir, self.name)
            incarnation = self._identity.identity.incarnation
            recorded = self._tag_record.load()
            if self._tag_record.problem:
                self.log.warning("tags_file_skipped", reason=self._tag_record.problem)
            self._node = Node(
                self.name,
                address,
                self._config,
                rng=self._rng,
                incarnation=incarnation,
                tags=start_tags(self.settings.tags, recorded),
            )
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(self._network.serve_streams, bind, self.streams.serve_one)
                nursery.start_soon(self._receive_loop)
                seeds = await self._join_candidates()
                self._node.start(trio.current_time(), seeds, named_seeds=bool(self.settings.join))
                nursery.start_soon(self._core_loop)
                nursery.start_soon(self._snapshot_loop)
                self.log.info(
                    "agent_started",
                    address=fmt_address(address),
                    incarnation=incarnation,
                    seeds=list(self.settings.join),
                    profile=self._config.profile,
                )
                await self._start_services(nursery)
                if self.settings.api is not None:
                    await self._start_api(nursery, self.settings.api)
                task_status.started()
                await self._stop_requested.wait()
                nursery.cancel_scope.cancel()
        finally:
            udp.close()
            self._save_snapshot()
            self._subscribers.close_all()
            self._stopped.set()
            self.log.info("agent_stopped", incarnation=self.incarnation)

    async def _start_services(self, nursery: trio.Nursery) -> None:
        for service in self._services:
            await nursery.start(service.run)

    async def _start_api(self, nursery: trio.Nursery, bind: Address) -> None:
        routes = dict(control_routes(self))
        for key, handler in self._routes.items():
            _add_unique(routes, key, handler, f"route {key}")
        rejected = self.metrics.counter(
            "http_rejected_total", "Control API requests refused, by reason.", ("reason",)
        )
        server = HttpServer(routes, token=self.settings.api_token, rejected=rejected)
        listeners = await nursery.start(server.serve, bind[0], bind[1])
        self.api_address = _listener_address(listeners[0])
        self.log.info("api_started", api=fmt_address(self.api_address))

    async def _core_loop(self) -> None:
        node = self._node
        assert node is not None
        lag = LagWatch(self._notifier.loop_lag, self.log)
        await self._drain()
        while True:
            deadline = node.next_deadline()
            now = trio.current_time()
            if deadline is not None and deadline <= now:
                # How late the timers fire is how long the loop was stalled; the
                # core hears it first, so it can restart the probes that the stall
                # (not the target) made late, before they expire below.
                node.loop_lagged(now, now - deadline)
                lag.observe(now, now - deadline)
                node.handle_timeout(now)
                await self._drain()
                continue
            item: Callable[[float], None] | None = None
            with trio.move_on_at(deadline if deadline is not None else math.inf):
                item = await self._inbox_recv.receive()
            if item is None:
                continue  # the deadline passed: fire the timers above
            item(trio.current_time())
            # Batch whatever else is already waiting, then drain once (never cancelled
            # half-way by the deadline, so no output is lost).
            for _ in range(64):
                try:
                    item = self._inbox_recv.receive_nowait()
                except trio.WouldBlock:
                    break
                item(trio.current_time())
            await self._drain()

    async def _drain(self) -> None:
        assert self._node is not None
        for out in self._node.take_outputs():
            if isinstance(out, o.Send):
                await self._send(out.to, fr.encode_member_datagram(out.payload))
            elif isinstance(out, o.OpenStream):
                assert self._nursery is not None
                self._nursery.start_soon(self._member_stream, out)
            elif isinstance(out, o.ResolveSeeds):
                if not self._resolving:
                    assert self._nursery is not None
                    self._resolving = True
                    self._nursery.start_soon(self._resolve_seeds)
            else:
                self._notify(out)

    def _notify(self, out: o.Notification) -> None:
        now = trio.current_time()
        if isinstance(out, o.IncarnationChanged):
            if self._identity is not None:
                self._identity.incarnation_changed(out.incarnation)
        elif isinstance(out, o.Joined):
            if not self.joined.is_set():
                self.log.info(
                    "agent_joined", via=fmt_address(out.via), incarnation=self.incarnation
                )
            self.joined.set()
        elif isinstance(out, o.LeaveCompleted):
            self.left.set()
        elif isinstance(out, o.QueryAnswered):
            self._queries.answered(out)
            return
        event = self._notifier.notification(out, now)
        if event is not None:
            self._publish(event)

    def _publish(self, event: MemberEvent) -> None:
        for service in self._services:
            try:
                if event.kind in ("user", "query"):
                    service.user_event(event)
                else:
                    service.member_event(event)
            except Exception:
                self.log.exception("service_member_event_failed", service=service.name)
        self._subscribers.publish(event)

    async def _send(self, to: Address, plaintext: bytes) -> None:
        data = self._sealer.seal(plaintext, to)
        n = self._notifier
        if await self._udp.send(to, data):
            n.packets_out.inc()
            n.bytes_out.inc(len(data))
        else:
            n.send_failed.inc()

    async def _receive_loop(self) -> None:
        n = self._notifier
        while True:
            data, src = await self._udp.receive()
            n.packets_in.inc()
            n.bytes_in.inc(len(data))
            try:
                channel, body = fr.decode_datagram(self._sealer.open(data, src))
            except (SealRejected, fr.FrameError) as exc:
                n.rejected.inc(labels={"reason": exc.reason})
                continue
            except Exception:  # a sealer bug: count it, keep receiving
                n.rejected.inc(labels={"reason": "internal_error"})
                self.log.exception("datagram_open_failed", source=fmt_address(src))
                continue
            if channel is None:
                await self._inbox_send.send(_receive(self, src, body))
                continue
            handler = self._dgram_handlers.get(channel)
            if handler is None:
                n.rejected.inc(labels={"reason": "unknown_channel"})
                continue
            try:
                handler(src, body)
            except Exception:
                self.log.exception("datagram_handler_failed", channel=channel)

    async def _resolve_seeds(self) -> None:
        """ResolveSeeds: the seed names resolved now, handed back to the core,
        which joins them (the retry policy is the core's: joinretry.py)."""
        try:
            addresses = await self._join_candidates()
        finally:
            self._resolving = False
        event = "seeds_rejoined" if self.joined.is_set() else "join_retry"
        self.log.info(event, seeds=list(self.settings.join), resolved=len(addresses))
        await self.call(lambda node, now: node.set_seeds(now, addresses))

    async def _join_candidates(self) -> list[Address]:
        """The seeds' addresses, then those of the member snapshot (snapshot.py)."""
        seeds = await self._resolve(self.settings.join)
        known, problem = self._snapshot.addresses()
        if problem:
            self.log.warning("member_snapshot_skipped", reason=problem)
        own = self.address
        return seeds + [a for a in dict.fromkeys(known) if a not in seeds and a != own]

    async def _snapshot_loop(self) -> None:
        while True:
            await trio.sleep(SAVE_INTERVAL_S)
            self._save_snapshot()

    def _save_snapshot(self) -> None:
        try:
            self._snapshot.save(self.members(), self.name)
        except OSError as exc:
            self.log.warning("member_snapshot_failed", error=str(exc))

    async def _member_stream_request(self, src: Address, body: bytes) -> bytes | None:
        return await self.call(lambda node, now: node.handle_stream_request(now, src, body))

    async def _member_stream(self, out: o.OpenStream) -> None:
        from gossip.runtime.service import StreamError

        try:
            reply = await self.streams.request(out.to, MEMBER_CHANNEL, out.payload, out.timeout)
        except StreamError as exc:
            reason = exc.reason
            await self.call(lambda node, now: node.stream_failed(now, out.stream_id, reason))
            return
        if reply is None:
            await self.call(lambda node, now: node.stream_failed(now, out.stream_id, "no_reply"))
        else:
            await self.call(
                lambda node, now: node.receive_stream_response(now, out.stream_id, reply)
            )


def _receive(agent: Agent, src: Address, body: bytes) -> Callable[[float], None]:
    def run(now: float) -> None:
        assert agent._node is not None
        agent._node.receive_datagram(now, src, body)

    return run


def _listener_address(listener: trio.SocketListener) -> Address:
    host, port = listener.socket.getsockname()[:2]
    return str(host), int(port)


def _add_unique(table: dict[Any, Any], key: Any, value: Any, what: str) -> None:
    if key in table:
        raise ValueError(f"{what} is registered twice")
    table[key] = value
