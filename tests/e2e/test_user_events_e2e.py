"""User events, handlers and queries between real agent processes on
loopback: `gossip event`, delivery on `gossip monitor` and in every agent's
log, exactly once, the refusal of an event above the payload limit; handlers
(a hanging one killed at its timeout, SIGHUP reload); `gossip query` answered
by handlers, and a query whose filter matches nobody."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cluster_helpers import logged, stop_at_once

from gossip.client.localcluster import QUICK_CONFIG, LocalCluster

pytestmark = pytest.mark.e2e


def _gossip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gossip", *args],
        capture_output=True, text=True, timeout=60, env=dict(os.environ),
    )  # fmt: skip


def _received(path: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in path.read_text().splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if line.get("event") == "user_event_received":
            lines.append(line)
    return lines


def test_an_event_reaches_every_agent_once_and_an_oversized_one_is_refused(
    tmp_path: Path,
) -> None:
    with LocalCluster(3, tmp_path, config_text=QUICK_CONFIG) as cluster:
        cluster.start()
        cluster.wait_all_alive(30)
        first, watched = cluster.agents[0], cluster.agents[2]
        monitor = subprocess.Popen(
            [sys.executable, "-m", "gossip", "monitor", "--json", "--api",
             watched.api().address],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            assert monitor.stdout is not None
            assert json.loads(monitor.stdout.readline())["event"] == "subscribed"
            api = first.api().address
            fired = _gossip("event", "deploy", "v1", "--no-coalesce", "--api", api)
            assert fired.returncode == 0, fired.stderr
            assert "deploy" in fired.stdout
            line = json.loads(monitor.stdout.readline())
            assert (line["event"], line["name"], line["payload"]) == ("user", "deploy", "v1")
            assert line["coalesce"] is False

            big = _gossip("event", "deploy", "x" * 600, "--api", api)
            assert big.returncode == 1
            assert "limit is 512" in big.stderr

            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                if all(_received(a.log_path) for a in cluster.agents):
                    break
                time.sleep(0.2)
            time.sleep(1.0)  # let any duplicate arrive before counting
            for agent in cluster.agents:
                names = [e["name"] for e in _received(agent.log_path)]
                assert names == ["deploy"], agent.name
        finally:
            monitor.send_signal(signal.SIGINT)
            monitor.communicate(timeout=10)
            stop_at_once(cluster)


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _handlers_config(out: Path, deploy_file: str) -> str:
    return QUICK_CONFIG + (
        "[handlers]\nhandler_timeout = 1.0\nevent_handlers = [\n"
        f"  'user:deploy=cat >> \"{out}/$GOSSIP_SELF_NAME.{deploy_file}\"',\n"
        "  'user:hang=sleep 60',\n"
        "  'query:uptime=echo up-$GOSSIP_SELF_NAME',\n"
        "]\n"
    )


def test_handlers_run_once_per_agent_a_hanging_one_is_killed_and_sighup_reloads(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with LocalCluster(3, tmp_path, config_text=_handlers_config(out, "first")) as cluster:
        cluster.start()
        cluster.wait_all_alive(30)
        api = cluster.agents[0].api().address
        assert _gossip("event", "hang", "--api", api).returncode == 0
        assert _gossip("event", "deploy", "v1", "--api", api).returncode == 0
        files = [out / f"{a.name}.first" for a in cluster.agents]
        _wait(lambda: all(f.exists() for f in files), 15, "the deploy handler on every agent")
        _wait(
            lambda: all(logged(a.log_path, "event_handler_timed_out") for a in cluster.agents),
            15,
            "the hanging handler killed everywhere",
        )
        for agent in cluster.agents:
            assert agent.members()  # the API still answers
            assert agent.running()

        asked = _gossip("query", "uptime", "--timeout", "3", "--json", "--api", api)
        assert asked.returncode == 0, asked.stderr
        lines = [json.loads(x) for x in asked.stdout.splitlines()]
        names = sorted(a.name for a in cluster.agents)
        assert lines[0]["expected"] == names
        done = lines[-1]
        assert (done["acks"], done["responses"]) == (names, names)
        assert (done["no_ack"], done["no_response"]) == ([], [])
        answers = {x["from"]: x["payload"] for x in lines if x["event"] == "response"}
        assert answers == {n: f"up-{n}\n" for n in names}

        nobody = _gossip("query", "uptime", "--node", "nobody-*", "--timeout", "1", "--api", api)
        assert nobody.returncode == 0, nobody.stderr
        assert "no alive member matches the filter" in nobody.stdout
        assert "0 acks, 0 responses" in nobody.stdout

        (tmp_path / "agent.toml").write_text(_handlers_config(out, "second"))
        for agent in cluster.agents:
            agent.signal(signal.SIGHUP)
        _wait(
            lambda: all(logged(a.log_path, "config_reloaded") for a in cluster.agents),
            15,
            "the reload",
        )
        assert _gossip("event", "deploy", "v2", "--api", api).returncode == 0
        second = [out / f"{a.name}.second" for a in cluster.agents]
        _wait(lambda: all(f.exists() for f in second), 15, "the reloaded handler")
        time.sleep(1.0)  # let any duplicate run before counting
        assert [f.read_text() for f in files] == ["v1"] * 3
        assert [f.read_text() for f in second] == ["v2"] * 3
        stop_at_once(cluster)
