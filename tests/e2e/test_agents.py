"""Real agent processes on loopback: join, kill -9, graceful leave, restart; the CLI.

Every process here is started by the test and stopped by PID (LocalCluster).
The `local` profile with shorter intervals keeps each scenario to seconds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cluster_helpers import logged

from gossip.client.localcluster import QUICK_CONFIG, LocalCluster, find_free_base

pytestmark = pytest.mark.e2e

FAST = QUICK_CONFIG


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_five_agents_detect_a_crash_a_leave_and_a_restart(tmp_path: Path, host: str) -> None:
    with LocalCluster(5, tmp_path, config_text=FAST, host=host) as cluster:
        cluster.start()
        cluster.wait_all_alive(30)
        names = [a.name for a in cluster.agents]
        first, victim, leaver = cluster.agents[0], cluster.agents[4], cluster.agents[3]
        monitor = subprocess.Popen(
            [sys.executable, "-m", "gossip", "monitor", "--json", "--api",
             first.api().address],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            assert monitor.stdout is not None
            assert json.loads(monitor.stdout.readline())["event"] == "subscribed"
            before = first.members()[victim.name]["incarnation"]
            victim.signal(signal.SIGKILL)
            assert victim.wait(5) == -signal.SIGKILL
            survivors = [n for n in names if n != victim.name]
            cluster.wait_until(
                lambda: cluster.all_see([victim.name], "dead", survivors), 30, what="failed"
            )
            for agent in cluster.agents[:4]:
                failed = [e for e in logged(agent.log_path, "member_failed")
                          if e["member"] == victim.name]  # fmt: skip
                assert failed, f"{agent.name} logged no member_failed for {victim.name}"
                assert {"accuser", "confirmations", "health", "incarnation"} <= set(failed[0])
                assert failed[0]["node"] == agent.name

            assert leaver.stop(grace=10) == 0  # SIGTERM: graceful leave, exit 0
            remaining = names[:3]
            cluster.wait_until(
                lambda: cluster.all_see([leaver.name], "left", remaining), 10, what="left"
            )
            for agent in cluster.agents[:3]:
                assert not [e for e in logged(agent.log_path, "member_failed")
                            if e["member"] == leaver.name]  # fmt: skip

            victim.start()  # same name, same data dir
            cluster.wait_until(
                lambda: cluster.all_see([victim.name], "alive", [*remaining, victim.name]),
                30,
                what="restarted alive",
            )
            for agent in cluster.agents[:3]:
                assert agent.members()[victim.name]["incarnation"] > before
        finally:
            monitor.send_signal(signal.SIGINT)
            out, _ = monitor.communicate(timeout=10)
        events = [json.loads(line) for line in out.decode().splitlines()]
        events = [e for e in events if "member" in e]
        kinds = {(e["event"], e["member"]) for e in events}
        assert ("member_failed", victim.name) in kinds
        assert ("member_left", leaver.name) in kinds
        assert all(e["node"] == first.name for e in events)


def _gossip(*args: str, timeout: float = 60, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "gossip", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_gossip_cluster_starts_agents_prints_members_and_stops_them_cleanly(
    tmp_path: Path,
) -> None:
    base = find_free_base(6)
    result = _gossip(
        "cluster", "-n", "3", "--base-port", str(base), "--for", "0.5", "--dir", str(tmp_path)
    )
    logs = {p.name: p.read_text()[-2000:] for p in tmp_path.glob("*.log")}
    assert result.returncode == 0, (result.stdout, result.stderr, logs)
    assert "all 3 agents see 3 alive members" in result.stdout
    table = [line for line in result.stdout.splitlines() if line.startswith("node-")]
    assert len(table) == 3 and all(" alive " in line for line in table)
    assert "stopped: 3 of 3 agents left gracefully" in result.stdout


def test_an_invalid_setting_is_one_line_naming_it_and_exit_status_2() -> None:
    result = _gossip("agent", "--bind", "127.0.0.1:99999", timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "gossip agent: invalid setting bind: bad port in '127.0.0.1:99999' (want HOST:PORT)"
    ]
    result = _gossip("agent", timeout=30, env={"GOSSIP_LOG_LEVEL": "chatty"})
    assert result.returncode == 2
    assert "invalid setting log_level" in result.stderr


def test_a_taken_port_is_one_clear_line_and_exit_status_1() -> None:
    port = find_free_base(1)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = _gossip("agent", "--name", "x", "--bind", f"127.0.0.1:{port}", "--api", "off")
    assert result.returncode == 1
    assert (
        result.stderr.strip().splitlines()[-1] == "gossip agent: [Errno 98] Address already in use"
    )


def user_tags(tags: dict[str, str]) -> dict[str, str]:
    """A member's tags without the store's settings hash (the "kv" tag)."""
    return {k: v for k, v in tags.items() if k != "kv"}


def test_sighup_reloads_tags_and_the_client_commands_work(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('[tags]\nrole = "old"\n')
    with LocalCluster(1, tmp_path, extra_args=["--config", str(config)]) as cluster:
        cluster.start()
        cluster.wait_all_alive(20)
        agent = cluster.agents[0]
        api = f"127.0.0.1:{agent.api_port}"
        assert user_tags(agent.members()[agent.name]["tags"]) == {"role": "old"}
        config.write_text('[tags]\nrole = "new"\n')
        agent.signal(signal.SIGHUP)
        cluster.wait_until(
            lambda: user_tags(agent.members()[agent.name]["tags"]) == {"role": "new"},
            10,
            what="reload",
        )
        members = _gossip("members", "--api", api, timeout=20)
        assert members.returncode == 0
        assert "role=new" in members.stdout and "NAME" in members.stdout
        info = json.loads(_gossip("info", "--json", "--api", api, timeout=20).stdout)
        assert info["self"]["name"] == agent.name and info["health"]["status"] == "ok"
        metrics = agent.api().call("GET", "/v1/metrics")
        assert 'gossip_members{state="alive"} 1' in metrics
        assert _gossip("leave", "--api", api, timeout=20).returncode == 0
        assert agent.wait(10) == 0
    unreachable = _gossip("members", "--api", api, timeout=20)
    assert unreachable.returncode == 1
    assert "cannot reach the agent API" in unreachable.stderr
