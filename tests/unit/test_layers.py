"""The layers of the package: which part may import which, and no import cycles.

Rules: every import of a gossip module counts, wherever it stands: at the top,
under `if TYPE_CHECKING:`, or inside a function. Each module belongs to one
unit (UNIT_PREFIXES); an import from one unit into another must be an edge of
ALLOWED, where each edge carries its reason. A change that needs a new edge
adds it to ALLOWED in the same commit, with that reason. Modules named only in
strings and loaded with importlib (runtime/plugins.py's PLUGIN_MODULES, the
package's lazy exports) are configuration, not import edges.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping, Set
from pathlib import Path

import gossip

PACKAGE_DIR = Path(gossip.__file__).parent

# Longest prefix wins: gossip.core.types is the shared core, gossip.core.store.* is core.store.
UNIT_PREFIXES: Mapping[str, str] = {
    "gossip": "gossip",
    "gossip.__main__": "main",
    "gossip.atomicfile": "atomicfile",
    "gossip.hostport": "hostport",
    "gossip.faults": "faults",
    "gossip.core": "core",
    "gossip.core.types": "core",
    "gossip.core.rendezvous": "core",
    "gossip.core.membership": "core.membership",
    "gossip.core.ownership": "core.ownership",
    "gossip.core.store": "core.store",
    "gossip.security": "security",
    "gossip.runtime": "runtime",
    "gossip.runtime.ownership": "runtime.ownership",
    "gossip.runtime.store": "runtime.store",
    "gossip.runtime.keys": "runtime.keys",
    "gossip.runtime.handlers": "runtime.handlers",
    "gossip.client": "client",
    "gossip.testing": "testing",
    "gossip.sim": "sim",
    "gossip.emulate": "emulate",
    "gossip.logs": "logs",
    "gossip.bench": "bench",
    "gossip.cli": "cli",
}

CORE_UNITS = frozenset({"core", "core.membership", "core.ownership", "core.store"})

ALLOWED: Mapping[str, Mapping[str, str]] = {
    "core": {},
    "core.membership": {"core": "member names, addresses and states"},
    "core.ownership": {"core": "rendezvous scores and member states"},
    "core.store": {"core": "rendezvous placement of partitions"},
    "atomicfile": {},
    "hostport": {},
    "faults": {},
    "security": {
        "core": "addresses, for the sealer's per-peer calls",
        "atomicfile": "the keyring file is replaced atomically",
    },
    "runtime": {
        "core": "addresses and member information",
        "core.membership": "the agent drives the membership Node",
        "security": "the agent seals datagrams and streams",
        "atomicfile": "the identity file is replaced atomically",
        "hostport": "addresses in flags, config, the API and logs, IPv6 in brackets",
    },
    "runtime.ownership": {
        "runtime": "the Service interface, HTTP routes, metrics",
        "core": "addresses of the members token notes go to",
        "core.ownership": "the ownership state machine and partition table",
    },
    "runtime.store": {
        "runtime": "the Service interface, HTTP routes, settings",
        "core": "member states and addresses",
        "core.store": "records, clocks, placement, Merkle sync sessions",
    },
    "runtime.keys": {
        "runtime": "the Service interface, HTTP routes, settings errors",
        "core": "member states and addresses",
        "security": "the keyring, its file and the AES-GCM sealer",
    },
    "runtime.handlers": {
        "runtime": "the Service interface, member events, settings errors, metrics",
    },
    "client": {"hostport": "the API address from --api or GOSSIP_API, IPv6 in brackets"},
    "testing": {
        "core": "addresses and member information",
        "core.membership": "the core network harness drives Nodes",
        "runtime": "the in-memory network implements the runtime's Network; HTTP replay",
        "runtime.store": "fault runs start whole agents with the store service",
        "runtime.ownership": "fault runs start whole agents with the ownership service",
        "core.ownership": "the ownership checker reads item events",
        "core.store": "fault-run clients keep a session version (a store timestamp)",
        "faults": "the in-memory networks draw loss, delay and cuts from the shared fault model",
    },
    "sim": {
        "core": "addresses and member information",
        "core.membership": "the simulator drives Nodes",
        "faults": "the simulated network is the shared fault model",
    },
    "emulate": {
        "logs": "the players read and write the log records",
        "hostport": "agents' addresses on their command lines, IPv6 in brackets",
    },
    "logs": {},
    "bench": {
        "client": "store benchmarks run against a local cluster through the API client",
        "core": "rendezvous hashing",
        "core.ownership": "partition table benchmarks",
        "core.store": "Merkle sync and record benchmarks",
        "sim": "detection benchmarks run seeded simulations",
        "core.membership": "detection benchmarks pick the membership profile",
    },
    "cli": {
        "gossip": "the version",
        "runtime": "`gossip agent` runs an agent with its plugins",
        "security": "`gossip keys` generates and reads keys",
        "client": "the commands that talk to agents",
        "sim": "`gossip simulate`",
        "emulate": "`gossip emulate`",
        "logs": "`gossip logs`",
        "bench": "`gossip bench`",
        "testing": "`gossip torture` runs the whole-agent fault harness",
    },
    "gossip": {"runtime": "the library API, exported lazily"},
    "main": {"cli": "`python -m gossip`"},
}


# ---- the checker ------------------------------------------------------------------


def module_files(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = [package_dir.name, *path.relative_to(package_dir).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _known_module(name: str, known: Set[str]) -> str | None:
    """`name` if it is a module, else the longest dotted prefix of it that is one."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    base = parts[: len(parts) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imported_modules(source: str, module: str, is_package: bool, known: Set[str]) -> set[str]:
    """The modules of `known` that `source` imports, anywhere in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            # `from pkg import name`: the module pkg.name when there is one, else pkg.
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            resolved = _known_module(target, known)
            if resolved is not None and resolved != module:
                found.add(resolved)
    return found


def import_graph(files: Mapping[str, Path]) -> dict[str, set[str]]:
    known = set(files)
    return {
        name: imported_modules(path.read_text(), name, path.name == "__init__.py", known)
        for name, path in files.items()
    }


def unit_of(module: str) -> str | None:
    """The unit of the longest listed prefix; the top package holds only its own module."""
    if module == "gossip":
        return UNIT_PREFIXES[module]
    name = module
    while "." in name:
        if name in UNIT_PREFIXES:
            return UNIT_PREFIXES[name]
        name = name.rpartition(".")[0]
    return None


def forbidden_edges(
    graph: Mapping[str, Iterable[str]], allowed: Mapping[str, Mapping[str, str]]
) -> list[str]:
    """Each import that crosses units along an edge `allowed` does not list."""
    bad: list[str] = []
    for source, targets in sorted(graph.items()):
        for target in sorted(targets):
            a, b = unit_of(source), unit_of(target)
            if a != b and (a is None or b is None or b not in allowed.get(a, {})):
                bad.append(f"{source} ({a}) -> {target} ({b})")
    return bad


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        order[v] = low[v] = len(order)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in order:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], order[w])
        if low[v] == order[v]:
            component: list[str] = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in order:
            visit(v)
    return sorted(found)


# ---- the package --------------------------------------------------------------------


def test_every_module_belongs_to_a_unit_of_the_table() -> None:
    files = module_files()
    assert "gossip.runtime.agent" in files and "gossip.core.types" in files
    units = {name: unit_of(name) for name in files}
    assert {n for n, u in units.items() if u is None} == set()
    assert set(units.values()) <= set(ALLOWED)


def test_imports_follow_the_allowed_edges() -> None:
    assert forbidden_edges(import_graph(module_files()), ALLOWED) == []


def test_no_module_takes_part_in_an_import_cycle() -> None:
    assert cycles(import_graph(module_files())) == []


def test_every_allowed_edge_is_used() -> None:
    """An edge nobody needs any more leaves the table, so the table stays the truth."""
    graph = import_graph(module_files())
    used = {(unit_of(a), unit_of(b)) for a, targets in graph.items() for b in targets} - {
        (u, u) for u in ALLOWED
    }
    listed = {(a, b) for a, targets in ALLOWED.items() for b in targets}
    assert listed - used == set()


def test_the_table_keeps_the_layers() -> None:
    unit_graph = {a: set(targets) for a, targets in ALLOWED.items()}
    assert cycles(unit_graph) == [], "the units form layers, with no cycle among them"
    assert all(set(targets) <= {"core"} for u, targets in ALLOWED.items() if u in CORE_UNITS)
    assert ALLOWED["core"] == {}
    assert set(ALLOWED["security"]) <= {"core", "atomicfile"}
    assert set(ALLOWED["runtime"]) <= CORE_UNITS | {"security", "atomicfile", "hostport"}
    assert ALLOWED["hostport"] == {}  # a leaf: address text only
    for plugin in ("runtime.ownership", "runtime.store", "runtime.keys"):
        # A plugin package uses its own core feature only: features never import each other.
        own_core = {"core", "core." + plugin.split(".")[1]}
        assert set(ALLOWED[plugin]) <= own_core | {"runtime", "security", "atomicfile"}
    assert {u for u, targets in ALLOWED.items() if "cli" in targets} == {"main"}
    # Only the command line reaches the harnesses (`gossip torture`); the product never does.
    assert {u for u, targets in ALLOWED.items() if "testing" in targets} == {"cli"}


# ---- the checker itself -------------------------------------------------------------


def test_the_checker_reports_a_forbidden_edge_and_a_cycle() -> None:
    graph = {
        "gossip.core.types": {"gossip.runtime.agent"},  # the core reaching up
        "gossip.runtime.agent": {"gossip.runtime.api", "gossip.core.types"},
        "gossip.runtime.api": {"gossip.runtime.agent"},  # a cycle inside one unit
        "gossip.cli.main": set(),
    }
    assert forbidden_edges(graph, ALLOWED) == [
        "gossip.core.types (core) -> gossip.runtime.agent (runtime)"
    ]
    assert cycles(graph) == [["gossip.core.types", "gossip.runtime.agent", "gossip.runtime.api"]]
    assert forbidden_edges({"gossip.unplaced": {"gossip.cli.main"}}, ALLOWED) == [
        "gossip.unplaced (None) -> gossip.cli.main (cli)"
    ]


def test_the_checker_sees_typing_only_local_and_relative_imports() -> None:
    known = {
        "gossip",
        "gossip.runtime",
        "gossip.runtime.agent",
        "gossip.runtime.http",
        "gossip.runtime.store",
        "gossip.runtime.store.sync",
        "gossip.runtime.store.service",
        "gossip.core.types",
    }
    source = (
        "from typing import TYPE_CHECKING\n"
        "import trio\n"
        "from gossip.core.types import Address\n"
        "if TYPE_CHECKING:\n"
        "    from gossip.runtime.agent import Agent\n"
        "def routes() -> None:\n"
        "    from gossip.runtime import http\n"
        "from .sync import AntiEntropy\n"
        "from .. import agent\n"
    )
    assert imported_modules(source, "gossip.runtime.store.service", False, known) == {
        "gossip.core.types",
        "gossip.runtime.agent",
        "gossip.runtime.http",
        "gossip.runtime.store.sync",
    }
