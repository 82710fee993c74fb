"""The protocol core must stay pure: no I/O modules, no clocks."""

import ast
from pathlib import Path

import gossip.core

FORBIDDEN = {"trio", "socket", "time", "asyncio", "selectors", "threading", "os", "subprocess"}


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_modules_import_no_io_or_clock_modules() -> None:
    core_dir = Path(gossip.core.__file__).parent
    files = sorted(core_dir.rglob("*.py"))
    assert files, "the core package has modules"
    offenders = {
        str(path.relative_to(core_dir)): sorted(_imported_roots(path) & FORBIDDEN)
        for path in files
        if _imported_roots(path) & FORBIDDEN
    }
    assert offenders == {}


def test_purity_check_detects_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import time\nfrom trio import sleep\n")
    assert _imported_roots(bad) & FORBIDDEN == {"time", "trio"}
