"""The services an agent hosts, and the routes and channels they register.

Rules:
- A service is attached, and its routes, stream channels and datagram
  channels registered, when it is added; a name or route registered twice is
  refused with ValueError, and a channel name must fit the frame format.
- Services start in the order they were added, each once its run() reports
  started.
- A member event goes to every service in turn (user events and queries to
  user_event, the rest to member_event); a service that raises is logged and
  the others still get the event.
- Before a graceful leave, each service's before_leave runs in turn, bounded
  by its leave_timeout; one that fails is logged and the leave goes on.
"""

from __future__ import annotations

from typing import Any

import trio

from gossip.runtime import framing as fr
from gossip.runtime.http import Handler, RouteKey
from gossip.runtime.service import (
    DatagramHandler,
    MemberEvent,
    Service,
    ServiceHost,
    StreamHandler,
)
from gossip.runtime.settings import AgentSettings


class HostedServices:
    def __init__(self, log: Any) -> None:
        self._log = log
        self._services: list[Service] = []
        self.routes: dict[RouteKey, Handler] = {}
        self.stream_handlers: dict[str, StreamHandler] = {}
        self.datagram_handlers: dict[str, DatagramHandler] = {}

    def add(self, service: Service, host: ServiceHost) -> None:
        service.attach(host)
        for key, handler in service.routes().items():
            add_unique(self.routes, key, handler, f"route {key}")
        for name, stream_handler in service.stream_channels().items():
            fr.encode_request(name, b"")  # validates the name
            add_unique(self.stream_handlers, name, stream_handler, f"stream channel {name}")
        for name, dgram_handler in service.datagram_channels().items():
            fr.encode_channel_datagram(name, b"")
            add_unique(self.datagram_handlers, name, dgram_handler, f"datagram channel {name}")
        self._services.append(service)

    async def start(self, nursery: trio.Nursery) -> None:
        for service in self._services:
            await nursery.start(service.run)

    def publish(self, event: MemberEvent) -> None:
        for service in self._services:
            try:
                if event.kind in ("user", "query"):
                    service.user_event(event)
                else:
                    service.member_event(event)
            except Exception:
                self._log.exception("service_member_event_failed", service=service.name)

    async def before_leave(self) -> None:
        for service in self._services:
            with trio.move_on_after(service.leave_timeout):
                try:
                    await service.before_leave()
                except Exception:
                    self._log.exception("service_before_leave_failed", service=service.name)

    def reload(self, settings: AgentSettings) -> None:
        """Hand each service its config table as read again."""
        for service in self._services:
            service.reload(settings.section(service.name))


def add_unique(table: dict[Any, Any], key: Any, value: Any, what: str) -> None:
    if key in table:
        raise ValueError(f"{what} is registered twice")
    table[key] = value
