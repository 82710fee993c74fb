"""The Agent: one membership Node inside a trio shell, plus services and the control API.

The agent owns the Node and wires its parts: the core task (coretask.py: the
one task that touches the Node, fed through a bounded inbox), the UDP traffic
(datagrams.py), the membership's streams (memberstreams.py), finding the
cluster (joiner.py: seeds and the member snapshot), the hosted services and
their routes and channels (hosted.py), queries (queries.py) and the control
API (api.py).

Rules: after every input the core task drains the outputs: Send and
OpenStream are carried out, notifications become log lines, metrics and
MemberEvents. Reads (members(), member()) are synchronous and safe from any
task. Everything runs in the nursery of `serve`, which returns after `stop()`
(or a completed `leave()` when asked to stop).
"""

from __future__ import annotations

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
from gossip.runtime.api import serve_api
from gossip.runtime.clock import SystemClock, WallClock
from gossip.runtime.coretask import CoreTask
from gossip.runtime.datagrams import Datagrams
from gossip.runtime.dnsresolver import SystemResolver
from gossip.runtime.history import MemberHistory
from gossip.runtime.hosted import HostedServices, add_unique
from gossip.runtime.http import Handler, RouteKey
from gossip.runtime.identity import IdentityKeeper
from gossip.runtime.insight import InsightService, nearest_live
from gossip.runtime.joiner import Joiner, advertise_address
from gossip.runtime.loopwatch import LagWatch
from gossip.runtime.memberstreams import MEMBER_CHANNEL, MemberStreams
from gossip.runtime.metrics import Registry
from gossip.runtime.network import Network, SocketNetwork
from gossip.runtime.notify import Notifier, fmt_address
from gossip.runtime.queries import QueryRouter, QueryStream, collect
from gossip.runtime.queryanswers import QUERY_CHANNEL, AnswerStreams
from gossip.runtime.seeds import Resolver
from gossip.runtime.service import MemberEvent, Service
from gossip.runtime.settings import AgentSettings
from gossip.runtime.snapshot import MemberSnapshot
from gossip.runtime.streams import StreamChannels
from gossip.runtime.subscribe import Subscribers, Subscription
from gossip.runtime.tagfile import TagChange, TagRecord, start_tags
from gossip.security.sealing import PlainSealer, Sealer

T = TypeVar("T")

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
        self._sealer: Sealer = sealer or PlainSealer()
        self._rng = rng or random.Random(secrets.randbits(64))
        self.metrics = Registry()
        gcstats.install(self.metrics)
        self._node: Node | None = None
        self._identity: IdentityKeeper | None = None
        self._config: Config = settings.core_config()
        self._core = CoreTask()
        self._subscribers = Subscribers()
        self._queries = QueryRouter(self.metrics)
        self._nursery: trio.Nursery | None = None
        self._started = False
        self.api_address: Address | None = None
        self.joined = trio.Event()
        self.left = trio.Event()
        self.leaving = False
        self._stopped = trio.Event()
        self._stop_requested = trio.Event()
        # Bound here (not only via contextvars) so lines logged from a caller's task,
        # e.g. leave() called by an embedding program, still name this agent.
        self.log = log.bind(node=settings.name)
        self._hosted = HostedServices(self.log)
        self._notifier = Notifier(self.log, self.metrics, self.members, lambda: self.health)
        self.streams = StreamChannels(
            self._network,
            lambda: self._sealer,
            self._hosted.stream_handlers,
            max_bytes=self._config.max_stream_bytes,
            timeout=self._config.stream_timeout,
            streams=self._notifier.streams,
            rejected=self._notifier.streams_rejected,
            metrics=self.metrics,
            spawn=lambda: self._nursery,
        )
        self._member_streams = MemberStreams(self._core, self.streams)
        self._hosted.stream_handlers[MEMBER_CHANNEL] = self._member_streams.answer
        self._answers = AnswerStreams(
            settings.name,
            lambda: self.address,
            self._config.max_name_bytes,
            self.streams.request,
            lambda reply: self.call(lambda node, now: node.receive_query_reply(now, reply)),
            self.metrics,
        )
        self._hosted.stream_handlers[QUERY_CHANNEL] = self._answers.receive
        self._tag_record = TagRecord(settings.data_dir)
        self._joiner = Joiner(
            settings.name,
            tuple(settings.join),
            settings.bind[0],
            resolver=resolver or SystemResolver(),
            snapshot=MemberSnapshot(settings.data_dir),
            core=self._core,
            own=lambda: self.address,
            members=self.members,
            joined=self.joined,
            log=self.log,
        )
        history = MemberHistory(settings.name, self.wall_ms, lambda: self.health)
        self._notifier.history = history
        # Built in, not a Service: it has no task to run, and an extra task
        # start would change how every agent's start-up interleaves.
        insight = InsightService(self, history)
        insight.attach(self)
        for (method, path), handler in insight.routes().items():
            self.add_route(method, path, handler)
        self._hosted.stream_handlers.update(insight.stream_channels())

    # ---- set-up before serve() -------------------------------------------------

    def add_service(self, service: Service) -> None:
        if self._started:
            raise RuntimeError("add services before the agent starts")
        self._hosted.add(service, self)

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
        add_unique(self._hosted.routes, (method, path), handler, f"route {method} {path}")

    @property
    def routes(self) -> Mapping[RouteKey, Handler]:
        return self._hosted.routes

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
        await self._datagrams.send(to, fr.encode_channel_datagram(channel, body))

    def subscribe(self, maxsize: int = 256) -> Subscription:
        """Membership events from now on; a subscriber that falls behind is cut off."""
        return self._subscribers.subscribe(maxsize)

    # ---- commands --------------------------------------------------------------------

    async def call(self, fn: Callable[[Node, float], T]) -> T:
        """Run `fn(node, now)` in the core task and return its result."""
        return await self._core.call(fn)

    async def join(self, seeds: Sequence[str]) -> int:
        """One join attempt to `seeds` (HOST:PORT or srv:NAME, resolved now); returns
        how many addresses they resolved to."""
        addresses = await self._joiner.resolve(seeds)
        if addresses:
            await self.call(lambda node, now: node.join(now, addresses))
        return len(addresses)

    async def set_tags(self, tags: Mapping[str, str]) -> None:
        await self.call(lambda node, now: node.set_tags(now, dict(tags)))

    async def event(self, name: str, payload: bytes = b"", coalesce: bool = True) -> None:
        """Fire a user event to every member (docs/user-events.md); ValueError
        when the name and payload exceed the limit."""

        await self.call(lambda node, now: node.user_event(now, name, payload, coalesce))

    async def start_query(
        self,
        name: str,
        payload: bytes = b"",
        *,
        node: str = "*",
        tags: Mapping[str, str] | None = None,
        ack: bool = True,
        wait_s: float = 5.0,
        relay: int = 0,
    ) -> QueryStream:
        """Ask the members whose name and tags match these globs, their replies
        also relayed through `relay` members; read their acks and answers from
        the stream until its deadline, then close it. ValueError when the
        query is refused (size, filters); QueryRefused, a ValueError, when it
        is over this agent's bounds (runtime/queries.py)."""
        return await self._queries.start(
            self._core,
            name,
            payload,
            node=node,
            tags=tags or {},
            ack=ack,
            wait_s=wait_s,
            relay=relay,
        )

    async def query(self, name: str, payload: bytes = b"", **filters: Any) -> list[o.QueryAnswered]:
        """start_query, collected until the deadline."""
        return await collect(await self.start_query(name, payload, **filters))

    async def respond_query(self, event: MemberEvent, payload: bytes) -> None:
        """Answer a `query` event: over UDP, or over a stream when larger than
        a datagram takes (queryanswers.py); ValueError if over the limit."""
        qid = int(event.detail["qid"])
        address = parse_hostport(str(event.detail["address"]), 0)
        if self._node is not None and len(payload) > self._node.query_reply_room:
            await self._answers.send(address, qid, payload)
            return

        await self.call(lambda node, now: node.respond(now, qid, address, payload))

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
        await self._hosted.before_leave()
        await self.call(lambda node, now: node.leave(now))
        with trio.move_on_after(self._config.leave_timeout + 1.0):
            await self.left.wait()
        self.left.set()

    def reload_services(self, settings: AgentSettings) -> None:
        """SIGHUP: hand each service its config table as read again."""
        self._hosted.reload(settings)

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
        self._datagrams = Datagrams(
            udp,
            lambda: self._sealer,
            self._hosted.datagram_handlers,
            self._notifier,
            self.log,
            self._core.deliver,
        )
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
                nursery.start_soon(self._datagrams.receive_loop)
                seeds = await self._joiner.candidates()
                self._node.start(trio.current_time(), seeds, named_seeds=bool(self.settings.join))
                lag = LagWatch(self._notifier.loop_lag, self.log)
                nursery.start_soon(self._core.run, self._node, self._drain, lag.observe)
                nursery.start_soon(self._joiner.snapshot_loop)
                self.log.info(
                    "agent_started",
                    address=fmt_address(address),
                    incarnation=incarnation,
                    seeds=list(self.settings.join),
                    profile=self._config.profile,
                )
                await self._hosted.start(nursery)
                if self.settings.api is not None:
                    routes, token = self._hosted.routes, self.settings.api_token
                    self.api_address = await serve_api(
                        nursery, self, self.settings.api, routes, token
                    )
                    self.log.info("api_started", api=fmt_address(self.api_address))
                task_status.started()
                await self._stop_requested.wait()
                nursery.cancel_scope.cancel()
        finally:
            udp.close()
            self._joiner.save_snapshot()
            self._subscribers.close_all()
            self._stopped.set()
            self.log.info("agent_stopped", incarnation=self.incarnation)

    async def _drain(self) -> None:
        assert self._node is not None
        for out in self._node.take_outputs():
            if isinstance(out, o.Send):
                await self._datagrams.send(out.to, fr.encode_member_datagram(out.payload))
            elif isinstance(out, o.OpenStream):
                assert self._nursery is not None
                self._nursery.start_soon(self._member_streams.open, out)
            elif isinstance(out, o.ResolveSeeds):
                assert self._nursery is not None
                self._joiner.seeds_wanted(self._nursery)
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
        if event.kind in ("failed", "left") and event.member is not None:
            self.streams.peer_gone(event.member.address)
        self._hosted.publish(event)
        self._subscribers.publish(event)
