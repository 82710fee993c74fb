"""The service interface: how ownership, the store and key management plug into an Agent.

Rules: a Service is registered with `Agent.add_service(svc)` before the agent
starts. The agent then calls, in this order:
  1. `attach(host)` once, synchronously: keep the host, declare metrics.
  2. collects `routes()`, `stream_channels()`, `datagram_channels()` once;
     names must be unique across services ("member" is reserved).
  3. `run(task_status=...)` in the agent's nursery once transports are up;
     call `task_status.started()` when ready; the task is cancelled at stop.
  4. `member_event(event)` synchronously from the agent's core task for every
     membership change; it must not block or raise (exceptions are logged and
     swallowed). Read `host.members()` there for the current view.
     User events go to `user_event(event)` instead, under the same rules,
     and `reload(section)` is called with the service's table on SIGHUP.
  5. `before_leave()` awaited (bounded by the service's `leave_timeout`,
     LEAVE_HOOK_TIMEOUT unless it sets its own) when the agent is asked to
     leave gracefully, before the `left` broadcast.
Handlers: HTTP handlers take an ApiRequest and return an ApiResponse;
stream-channel handlers get (source, request body) and return the response
body or None, bounded by cfg.stream_timeout and cfg.max_stream_bytes;
datagram handlers are synchronous and cheap (queue work, don't do it inline).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import trio

from gossip.core.membership.config import Config
from gossip.core.types import Address, MemberInfo
from gossip.hostport import format_hostport
from gossip.runtime.http import Handler, RouteKey
from gossip.runtime.metrics import Registry
from gossip.security.sealing import Sealer

LEAVE_HOOK_TIMEOUT = 5.0

StreamHandler = Callable[[Address, bytes], Awaitable[bytes | None]]
DatagramHandler = Callable[[Address, bytes], None]

EVENT_KINDS = (
    "joined",
    "updated",
    "suspected",
    "failed",
    "recovered",
    "left",
    "reaped",
    "user",
    "query",
)
"""`user` is a user event (docs/user-events.md): `name` is the event's name,
`member` None and `detail` holds ltime, payload and coalesce; `query` a query
to answer (detail: qid, ltime, origin, address, payload)."""


@dataclass(frozen=True)
class MemberEvent:
    """One membership change as seen by this agent (also what `subscribe()` yields)."""

    kind: str
    """One of EVENT_KINDS."""
    name: str
    member: MemberInfo | None
    """The member's state after the change; None for `reaped`."""
    time: float
    """trio.current_time() when the agent saw it."""
    detail: Mapping[str, Any] = field(default_factory=dict)
    """accuser/confirmations/timeout_s for suspected, accuser/confirmations/health for failed."""

    def to_json(self) -> dict[str, Any]:
        if self.kind in ("user", "query"):
            return {"event": self.kind, "name": self.name, **self.detail}
        out: dict[str, Any] = {"event": f"member_{self.kind}", "member": self.name}
        if self.member is not None:
            out.update(
                address=format_hostport(*self.member.address),
                state=self.member.state.label,
                incarnation=self.member.incarnation,
                tags=dict(self.member.tags),
            )
        out.update(self.detail)
        return out


class StreamError(Exception):
    """A request over a stream channel failed: connect, timeout, size, seal or remote error."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ServiceHost(Protocol):
    """What the Agent offers to its services."""

    @property
    def name(self) -> str: ...
    @property
    def address(self) -> Address: ...
    @property
    def config(self) -> Config: ...

    @property
    def data_dir(self) -> Path | None: ...
    @property
    def seeds(self) -> Sequence[str]:
        """The peers this agent was told to join (empty for a first agent)."""
        ...

    @property
    def metrics(self) -> Registry: ...
    def settings_section(self, name: str) -> Mapping[str, Any]:
        """`settings_section("store")` -> that table of the TOML config file ({} if absent)."""
        ...

    def members(self) -> list[MemberInfo]: ...
    def member(self, name: str) -> MemberInfo | None: ...
    def nearest(self, n: int) -> list[tuple[str, float]]:
        """Up to n live members nearest this agent by estimated round trip, as
        (name, seconds), nearest first (network coordinates; empty while
        `[core] coordinates` is off): for a service that prefers near members."""
        ...

    def wall_ms(self) -> int:
        """The agent's wall clock in milliseconds (stamps, never elapsed time)."""
        ...

    async def set_tags(self, tags: Mapping[str, str]) -> None:
        """Replace this agent's member tags (gossiped to every member)."""
        ...

    async def request(self, to: Address, channel: str, body: bytes) -> bytes | None:
        """Open a TCP stream to `to`, send one request on `channel`, return the
        reply body (None when the handler returned None). Raises StreamError.
        Bounded by cfg.stream_timeout; wrap in trio.move_on_after for less."""
        ...

    async def send_datagram(self, to: Address, channel: str, body: bytes) -> None:
        """Best effort UDP to a datagram channel; a failed send is a lost packet."""
        ...

    async def respond_query(self, event: MemberEvent, payload: bytes) -> None:
        """Answer a `query` event (ValueError if the answer is too large)."""
        ...


class PluginHost(ServiceHost, Protocol):
    """What a plugin's `setup` needs of the agent it configures (see runtime/plugins.py):
    the ServiceHost, plus registering services and the sealer before the agent starts."""

    def add_service(self, service: Service) -> None: ...
    def set_sealer(self, sealer: Sealer) -> None: ...


class Service:
    """Base class with no-op defaults; override what you need."""

    name = "service"
    leave_timeout: float = LEAVE_HOOK_TIMEOUT
    """Bound on `before_leave`, s."""

    def attach(self, host: ServiceHost) -> None:
        self.host = host

    def routes(self) -> Mapping[RouteKey, Handler]:
        return {}

    def stream_channels(self) -> Mapping[str, StreamHandler]:
        return {}

    def datagram_channels(self) -> Mapping[str, DatagramHandler]:
        return {}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()

    def member_event(self, event: MemberEvent) -> None:
        return None

    def user_event(self, event: MemberEvent) -> None:
        """A user event or a query (kind `user` or `query`), with the same
        rules as member_event."""
        return None

    def reload(self, section: Mapping[str, Any]) -> None:
        """SIGHUP: the service's config table as read again; raise
        SettingsError to refuse it (the old settings stay)."""
        return None

    async def before_leave(self) -> None:
        return None
