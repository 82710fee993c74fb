"""Watches on three real agents: 9 watchers, 100 changes to one prefix, kill -9 of one agent.

Every watcher on an agent that stays up must end on the final value of every key; the
watchers on the killed agent stop with a clear error.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from gossip.cli import main
from gossip.client.api import ApiClientError
from gossip.client.kv import key_path, request
from gossip.client.localcluster import AgentProcess, LocalCluster
from gossip.client.watch import changes

pytestmark = pytest.mark.e2e
SETTLE_S = 30.0


def listing(agent: AgentProcess) -> dict[str, Any]:
    query = urlencode({"prefix": "cfg/", "watch": "", "wait": "1"})
    status, _, raw = request(agent.api(), "GET", f"/v1/kv?{query}")
    assert status == 200
    answer: dict[str, Any] = json.loads(raw)
    return answer


def test_every_watcher_that_stays_up_ends_on_the_final_value_of_every_key(
    tmp_path: Path,
) -> None:
    with LocalCluster(3, tmp_path, extra_args=["--kv-sync-interval", "0.5"]) as cluster:
        cluster.start()
        cluster.wait_all_alive(timeout=30)
        agents = cluster.agents
        last: dict[int, str] = {}
        ended: dict[int, str] = {}
        final = threading.Event()
        target: dict[str, str] = {}

        def follow(i: int, agent: AgentProcess) -> None:
            try:
                for change in changes(agent.api(), prefix="cfg/", wait=1, retries=3):
                    last[i] = change["index"]
                    if final.is_set() and last[i] == target["index"]:
                        return
            except ApiClientError as exc:
                ended[i] = str(exc)

        threads = [
            threading.Thread(target=follow, args=(i, agents[i % 3]), daemon=True) for i in range(9)
        ]
        for t in threads:
            t.start()
        victim = agents[2]
        for n in range(100):
            if n == 50:
                victim.signal(signal.SIGKILL)
                victim.wait(5)
            writer = agents[n % 2]
            status, _, _ = request(writer.api(), "PUT", key_path(f"cfg/k{n % 10}"), b"v%d" % n)
            assert status == 200
        target["index"] = listing(agents[0])["index"]
        final.set()
        survivors = [i for i in range(9) if i % 3 != 2]
        deadline = time.monotonic() + SETTLE_S
        while any(last.get(i) != target["index"] for i in survivors):
            assert time.monotonic() < deadline, f"watchers stuck: {last} vs {target}"
            time.sleep(0.1)
        assert listing(agents[1])["index"] == target["index"]
        final_values = {k["key"] for k in listing(agents[0])["keys"]}
        assert final_values == {f"cfg/k{i}" for i in range(10)}
        for i in range(2, 9, 3):
            threads[i].join(SETTLE_S)
        assert all("in a row" in ended[i] for i in range(9) if i % 3 == 2)


def test_kv_watch_prints_the_change_and_runs_the_handler(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LocalCluster(1, tmp_path) as cluster:
        cluster.start()
        cluster.wait_all_alive(timeout=30)
        api = cluster.agents[0].api().address
        assert main(["kv", "put", "--api", api, "--ephemeral", "svc/web", "up"]) == 0
        out = tmp_path / "handled.json"
        copy = f"import sys; open('{out}', 'wb').write(sys.stdin.buffer.read())"
        handler = f'{sys.executable} -c "{copy}"'
        argv = ["kv", "watch", "--api", api, "svc/web", "--count", "1", "--handler", handler]
        assert main(argv) == 0
        printed = json.loads(capsys.readouterr().out.splitlines()[-1])
        assert printed["value_b64"] == "dXA=" and printed["changed"]
        assert json.loads(out.read_bytes()) == printed
