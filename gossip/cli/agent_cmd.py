"""`gossip agent`: run one agent until SIGINT/SIGTERM.

Rules: settings are validated before anything binds (a bad one prints one line
naming it and exits 2); SIGINT/SIGTERM leave gracefully then exit 0, a second
one exits at once with 1; SIGHUP re-reads the log level, the tags and the
services' tables (event handlers) from the environment and config file (flags
still win) and applies them.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

import structlog
import trio

from gossip.runtime.agent import Agent
from gossip.runtime.identity import IdentityError
from gossip.runtime.logconfig import configure_logging, set_level
from gossip.runtime.plugins import add_plugin_arguments, setup_plugins
from gossip.runtime.settings import AgentSettings, SettingsError, load_settings

log = structlog.get_logger("gossip.agent")

FLAG_SETTINGS = (
    "name",
    "bind",
    "advertise",
    "join",
    "api",
    "api_token",
    "data_dir",
    "tags",
    "profile",
    "cluster_name",
    "log_level",
    "log_format",
    "log_file",
)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("agent", help="run an agent", description=__doc__)
    p.add_argument("--name", help="member name (default: host name)")
    p.add_argument(
        "--bind",
        help="HOST:PORT for UDP and TCP, IPv6 as [ADDR]:PORT, [::] for both (default 0.0.0.0:7946)",
    )
    p.add_argument(
        "--advertise", help="HOST:PORT others use to reach this agent (port 0: the bound one)"
    )
    p.add_argument(
        "--join", action="append", metavar="SEED", help="seed HOST:PORT or srv:NAME (repeatable)"
    )
    p.add_argument("--api", help="control API HOST:PORT (default 127.0.0.1:7947; 'off')")
    p.add_argument("--api-token", help="token the API requires (needed off loopback)")
    p.add_argument("--data-dir", help="directory for the persisted identity and data")
    p.add_argument("--config", type=Path, help="TOML config file")
    p.add_argument("--tag", dest="tags", action="append", metavar="KEY=VALUE", help="repeatable")
    p.add_argument("--profile", help="lan | wan | local")
    p.add_argument("--cluster-name", help="cluster label; other clusters' packets are refused")
    p.add_argument("--log-level", help="debug | info | warning | error")
    p.add_argument("--log-format", help="json | console")
    p.add_argument("--log-file", help="append log lines here instead of stderr")
    add_plugin_arguments(p)
    p.set_defaults(func=run)


def flags_of(args: argparse.Namespace) -> dict[str, Any]:
    return {key: getattr(args, key, None) for key in FLAG_SETTINGS}


def run(args: argparse.Namespace) -> int:
    flags = flags_of(args)
    try:
        settings = load_settings(flags, os.environ, args.config)
        configure_logging(settings.log_level, settings.log_format, settings.log_file)
        agent = Agent(settings)
        setup_plugins(agent, args)
    except (SettingsError, IdentityError) as exc:
        print(f"gossip agent: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"gossip agent: {exc}", file=sys.stderr)
        return 2
    try:
        return trio.run(_main, agent, flags, args.config)
    except (OSError, IdentityError, BaseExceptionGroup) as exc:
        # trio wraps errors from nursery tasks in groups: report the first known one.
        known = _first_known(exc)
        if known is None:
            raise
        agent.log.error("agent_failed", error=str(known))
        print(f"gossip agent: {known}", file=sys.stderr)
        return 2 if isinstance(known, IdentityError) else 1


def _first_known(exc: BaseException) -> BaseException | None:
    """The first OSError (e.g. port taken) or IdentityError, even inside exception groups."""
    if isinstance(exc, OSError | IdentityError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _first_known(inner)
            if found is not None:
                return found
    return None


async def _main(agent: Agent, flags: dict[str, Any], config: Path | None) -> int:
    rc = 0
    structlog.contextvars.bind_contextvars(node=agent.name)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                nonlocal rc
                async for signum in signals:
                    if signum == signal.SIGHUP:
                        await _reload(agent, flags, config)
                    elif not agent.leaving:
                        log.info("signal_received", signal=signal.Signals(signum).name)
                        nursery.start_soon(agent.leave_and_stop)
                    else:
                        log.warning("forced_exit", signal=signal.Signals(signum).name)
                        rc = 1
                        nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            await agent.serve()
            nursery.cancel_scope.cancel()
    return rc


async def _reload(agent: Agent, flags: dict[str, Any], config: Path | None) -> None:
    try:
        fresh: AgentSettings = load_settings(flags, os.environ, config)
    except SettingsError as exc:
        log.error("config_reload_failed", error=str(exc))
        return
    set_level(fresh.log_level)
    try:
        agent.reload_services(fresh)
    except SettingsError as exc:
        log.error("config_reload_failed", error=str(exc))
        return
    me = agent.self_info()
    tags = agent.configured_tags(fresh.tags)  # live changes (`gossip tags`) still win
    if me is not None and dict(me.tags) != tags:
        try:
            await agent.set_tags(tags)
        except ValueError as exc:
            log.error("config_reload_failed", error=str(exc))
            return
    log.info("config_reloaded", log_level=fresh.log_level, tags=dict(fresh.tags))
