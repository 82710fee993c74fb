"""The single-file executable: tools/build-binary makes dist/gossip, which
prints its version and runs a small cluster on loopback with no source tree.

Building takes about a minute on two cores, so it runs only when
GOSSIP_BUILD_BINARY=1 (CI sets it in .ci/run)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from gossip import __version__
from gossip.client.localcluster import find_free_base

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / "dist" / "gossip"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("GOSSIP_BUILD_BINARY") != "1",
        reason="set GOSSIP_BUILD_BINARY=1 to build dist/gossip (about a minute)",
    ),
]


def members(api: str) -> list[dict[str, object]]:
    with urllib.request.urlopen(f"http://{api}/v1/members", timeout=2) as response:
        data = json.loads(response.read())
    result: list[dict[str, object]] = data["members"]
    return result


def test_the_built_binary_runs_a_cluster(tmp_path: Path) -> None:
    subprocess.run(
        [str(ROOT / "tools" / "build-binary")], check=True, timeout=900, capture_output=True
    )
    version = subprocess.run([str(BINARY), "--version"], capture_output=True, text=True, timeout=60)
    assert version.stdout.strip() == f"gossip {__version__}"
    # Run from an empty folder with a clean environment: nothing from the source tree helps it.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    base = find_free_base(6)
    ports = [(base + 2 * i, base + 2 * i + 1) for i in range(3)]
    procs = []
    for i, (gossip_port, api_port) in enumerate(ports):
        argv = [str(BINARY), "agent", "--name", f"b{i}", "--bind", f"127.0.0.1:{gossip_port}"]
        argv += ["--api", f"127.0.0.1:{api_port}", "--profile", "local", "--log-format", "json"]
        argv += ["--log-file", str(tmp_path / f"b{i}.log"), "--data-dir", str(tmp_path / f"b{i}")]
        if i:
            argv += ["--join", f"127.0.0.1:{ports[0][0]}"]
        procs.append(subprocess.Popen(argv, cwd=tmp_path, env=env, stderr=subprocess.PIPE))
    try:
        deadline = time.monotonic() + 30
        views: list[set[str]] = []
        while time.monotonic() < deadline:
            try:
                views = [
                    {str(m["name"]) for m in members(f"127.0.0.1:{api}") if m["state"] == "alive"}
                    for _, api in ports
                ]
            except OSError:
                views = []
            if len(views) == 3 and all(v == {"b0", "b1", "b2"} for v in views):
                break
            time.sleep(0.3)
        assert views and all(v == {"b0", "b1", "b2"} for v in views), views
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=20) for proc in procs]
        for proc in procs:
            assert proc.stderr is not None
            proc.stderr.close()
    assert codes == [0, 0, 0]
    for i in range(3):
        assert '"agent_stopped"' in (tmp_path / f"b{i}.log").read_text()
