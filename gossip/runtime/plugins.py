"""Optional modules that add services, flags and a sealer to every `gossip agent`.

Rules: each module named in PLUGIN_MODULES may define
    add_arguments(parser: argparse.ArgumentParser) -> None
    setup(agent: gossip.runtime.service.PluginHost, args: argparse.Namespace | None) -> None
`setup` runs before the agent starts: it calls agent.add_service(...) and may call
agent.set_sealer(...). A module that is not present is skipped, so a build without
a part still runs. To add one, append its name here in a one-line commit.
GOSSIP_PLUGINS (comma-separated module names, or "none") limits which are loaded,
e.g. to run a membership-only agent.
"""

from __future__ import annotations

import argparse
import importlib
import os
from types import ModuleType

from gossip.runtime.service import PluginHost

PLUGIN_MODULES = (
    "gossip.runtime.keys.service",
    "gossip.runtime.ownership.service",
    "gossip.runtime.store.service",
    "gossip.runtime.handlers.service",
)


def selected_plugins() -> tuple[str, ...]:
    chosen = os.environ.get("GOSSIP_PLUGINS")
    if chosen is None:
        return PLUGIN_MODULES
    wanted = {c.strip() for c in chosen.split(",") if c.strip()}
    return tuple(n for n in PLUGIN_MODULES if n in wanted or n.rsplit(".", 1)[1] in wanted)


# Numeric libraries start one busy-waiting worker thread per core by default; in an
# agent (small tables, latency-sensitive loop) those threads cost ~2 % CPU per agent
# at idle and bring nothing. Set before any plugin can import numpy.
SINGLE_THREAD_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def load_plugins() -> list[ModuleType]:
    for var in SINGLE_THREAD_ENV:
        os.environ.setdefault(var, "1")
    found: list[ModuleType] = []
    for name in selected_plugins():
        try:
            found.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return found


def add_plugin_arguments(parser: argparse.ArgumentParser) -> None:
    for module in load_plugins():
        hook = getattr(module, "add_arguments", None)
        if hook is not None:
            hook(parser)


def setup_plugins(agent: PluginHost, args: argparse.Namespace | None) -> None:
    for module in load_plugins():
        hook = getattr(module, "setup", None)
        if hook is not None:
            hook(agent, args)
