"""The event-handler plugin: `--event-handler [FILTER=]CMD` for every `gossip agent`.

Rules: handlers come from the repeatable flag and from `event_handlers` (a
list of strings) in the config file's [handlers] table, with
`handler_timeout` (seconds, default 30) there too; a bad one stops the agent
with one line naming it. On SIGHUP the table is read again and the handlers
replaced (the flags stay). Membership and user events reach the runner
through the agent's service hooks, in the order the agent saw them.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping, Sequence
from typing import Any

import trio

from gossip.runtime.handlers.runner import DEFAULT_TIMEOUT, EventHandlers
from gossip.runtime.handlers.spec import MAX_HANDLERS, HandlerSpec, parse_handler
from gossip.runtime.notify import fmt_address
from gossip.runtime.service import MemberEvent, PluginHost, Service, ServiceHost
from gossip.runtime.settings import SettingsError

SECTION = "handlers"
KNOWN = {"event_handlers", "handler_timeout"}
MAX_TIMEOUT = 24 * 3600.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--event-handler",
        dest="event_handlers",
        action="append",
        metavar="[FILTER=]CMD",
        help="run CMD for events matching FILTER, e.g. member-join,user:deploy=./hook.sh",
    )


def setup(agent: PluginHost, args: argparse.Namespace | None) -> None:
    flags = list(getattr(args, "event_handlers", None) or [])
    agent.add_service(HandlerService(flags, agent.settings_section(SECTION)))


def handler_settings(
    flags: Sequence[str], section: Mapping[str, Any]
) -> tuple[list[HandlerSpec], float]:
    """The handlers (flags first) and the timeout; SettingsError naming a bad one."""
    unknown = sorted(set(section) - KNOWN)
    if unknown:
        raise SettingsError(f"{SECTION}.{unknown[0]}", "unknown setting")
    listed = section.get("event_handlers", [])
    if not isinstance(listed, list):
        raise SettingsError(f"{SECTION}.event_handlers", "must be a list of strings")
    texts = [*flags, *listed]
    if len(texts) > MAX_HANDLERS:
        raise SettingsError("event_handlers", f"at most {MAX_HANDLERS} handlers")
    specs = []
    for text in texts:
        try:
            specs.append(parse_handler(text))
        except ValueError as exc:
            raise SettingsError("event_handler", str(exc)) from None
    timeout = section.get("handler_timeout", DEFAULT_TIMEOUT)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not (0 < timeout <= MAX_TIMEOUT and math.isfinite(timeout))
    ):
        raise SettingsError(f"{SECTION}.handler_timeout", f"must be seconds in (0, {MAX_TIMEOUT}]")
    return specs, float(timeout)


class HandlerService(Service):
    name = SECTION

    def __init__(self, flags: Sequence[str], section: Mapping[str, Any]) -> None:
        self._flags = list(flags)
        self._specs, timeout = handler_settings(self._flags, section)
        self._runner: EventHandlers | None = None
        self._timeout = timeout

    def attach(self, host: ServiceHost) -> None:
        super().attach(host)
        self._runner = EventHandlers(
            self._self_view, host.metrics, self._timeout, respond=host.respond_query
        )
        self._runner.set_specs(self._specs)

    @property
    def runner(self) -> EventHandlers:
        assert self._runner is not None, "attach the service first"
        return self._runner

    def _self_view(self) -> tuple[str, str, Mapping[str, str]]:
        me = self.host.member(self.host.name)
        address = fmt_address(self.host.address)
        return self.host.name, address, dict(me.tags) if me is not None else {}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self.runner.run(task_status=task_status)

    def member_event(self, event: MemberEvent) -> None:
        self.runner.submit(event)

    def user_event(self, event: MemberEvent) -> None:
        self.runner.submit(event)

    def reload(self, section: Mapping[str, Any]) -> None:
        specs, timeout = handler_settings(self._flags, section)
        self.runner.timeout = timeout
        self.runner.set_specs(specs)
