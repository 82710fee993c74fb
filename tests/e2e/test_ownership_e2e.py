"""Work ownership with real agents: agreement, takeover after kill -9, handlers run once.

Every process here is started by the test and stopped by PID (LocalCluster).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from gossip.client.api import ApiClientError
from gossip.client.localcluster import AgentProcess, LocalCluster

pytestmark = pytest.mark.e2e

ITEMS = [f"item-{i}" for i in range(100)]
SETTLE = 1.0


def config(handler_dir: Path) -> str:
    # Each handler run appends one line to a file named after the node that ran it.
    line = 'echo "$GOSSIP_ITEM $GOSSIP_TOKEN $GOSSIP_REASON" >> ' + str(handler_dir)
    items = ", ".join(f'"{i}"' for i in ITEMS)
    return f"""
[core]  # fast failure detection: a kill -9 is confirmed within a few seconds
probe_interval = 0.4
probe_timeout = 0.15
suspicion_mult = 3
leave_timeout = 1.0

[ownership]
items = [{items}]
settle_time = {SETTLE}
coalesce_time = 0.2
on_acquire = '{line}/$GOSSIP_NODE.acquired'
on_release = '{line}/$GOSSIP_NODE.released'
"""


def status(agent: AgentProcess) -> dict[str, Any] | None:
    try:
        answer: dict[str, Any] = agent.api().call("GET", "/v1/ownership", timeout=2.0)
    except ApiClientError:
        return None
    return answer


def agreed(agents: list[AgentProcess]) -> dict[str, str] | None:
    """The item -> owner map when every agent reports the same full one, else None."""
    names = sorted(a.name for a in agents)
    views = [status(a) for a in agents]
    if any(v is None or v["members"] != names for v in views):
        return None
    maps = [v["items"] for v in views if v is not None]
    if any(m != maps[0] or None in m.values() for m in maps):
        return None
    return dict(maps[0])


def wait_for(
    check: Callable[[], Any], timeout: float, what: str, agents: Sequence[AgentProcess] = ()
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    views = {a.name: (status(a) or {}).get("members") for a in agents}
    raise AssertionError(f"{what} not reached within {timeout} s; table members: {views}")


def handler_lines(path: Path) -> list[tuple[str, int, str]]:
    if not path.exists():
        return []
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return [(item, int(token), reason) for item, token, reason in rows]


def net_held(handler_dir: Path, name: str) -> list[str]:
    held: Counter[str] = Counter(i for i, _, _ in handler_lines(handler_dir / f"{name}.acquired"))
    held.subtract(i for i, _, _ in handler_lines(handler_dir / f"{name}.released"))
    assert all(n in (0, 1) for n in held.values()), "acquire and release alternate per item"
    return sorted(i for i, n in held.items() if n == 1)


@contextmanager
def running(size: int, tmp_path: Path) -> Iterator[tuple[list[AgentProcess], Path]]:
    """`size` agents, all alive, with handlers writing under the returned directory."""
    handler_dir = tmp_path / "handlers"
    handler_dir.mkdir()
    with LocalCluster(size, tmp_path / "cluster", config_text=config(handler_dir)) as cluster:
        cluster.start()
        cluster.wait_all_alive(30)
        yield cluster.agents, handler_dir


def test_survivors_take_over_exactly_the_killed_owners_items_once(tmp_path: Path) -> None:
    with running(5, tmp_path) as (agents, handler_dir):
        before = wait_for(lambda: agreed(agents), 30, "agreement on 100 owners", agents)
        # Agents start one after another, so early ones may hold items for a while and hand
        # them on: each node's acquisitions minus its releases must be what it now owns.
        for a in agents:
            mine = sorted(i for i, o in before.items() if o == a.name)
            wait_for(lambda a=a, m=mine: net_held(handler_dir, a.name) == m, 20, "handlers")
        check_owner_command(agents[0], before)
        tokens = {
            i: t for a in agents for i, t, _ in handler_lines(handler_dir / f"{a.name}.acquired")
        }

        victim = next(a for a in agents[1:] if before["item-0"] == a.name or a is agents[-1])
        victim_items = {i for i, o in before.items() if o == victim.name}
        survivors = [a for a in agents if a is not victim]
        counts = {a.name: len(handler_lines(handler_dir / f"{a.name}.acquired")) for a in survivors}
        released = {a.name: handler_lines(handler_dir / f"{a.name}.released") for a in survivors}
        victim.signal(signal.SIGKILL)
        victim.wait(5.0)

        after = wait_for(lambda: agreed(survivors), 30, "agreement among the survivors", survivors)
        moved = {i for i in ITEMS if before[i] != after[i]}
        assert moved == victim_items, "only the killed node's items moved"
        assert victim.name not in after.values()

        expected_new = {a.name: sorted(i for i in moved if after[i] == a.name) for a in survivors}
        for a in survivors:
            path = handler_dir / f"{a.name}.acquired"
            want = counts[a.name] + len(expected_new[a.name])
            wait_for(lambda p=path, w=want: len(handler_lines(p)) >= w, 20, "takeover handlers")
            time.sleep(0.3)  # a duplicate run would show up here
            new_runs = handler_lines(path)[counts[a.name] :]
            assert sorted(i for i, _, _ in new_runs) == expected_new[a.name], "exactly once"
            for item, token, reason in new_runs:
                assert reason == "owner_failed"
                assert token > tokens[item], "the fencing token grew with the change of hands"
        # Nobody released anything: the survivors only gained items.
        assert {a.name: handler_lines(handler_dir / f"{a.name}.released") for a in survivors} == (
            released
        )


def check_owner_command(agent: AgentProcess, owners: dict[str, str]) -> None:
    """`gossip owner` asks one agent and prints the ranked owners."""
    run = [sys.executable, "-m", "gossip", "owner", "--api", f"127.0.0.1:{agent.api_port}"]
    out = subprocess.run([*run, "item-7", "-n", "3"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert lines[0] == owners["item-7"] and len(set(lines)) == 3
    bad = subprocess.run([*run, "x", "-n", "0"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1 and "n must be an integer" in bad.stderr
    table = subprocess.run([*run, "--items"], capture_output=True, text=True, timeout=30)
    rows = [line.split() for line in table.stdout.splitlines()[1:]]
    assert {r[0]: r[1] for r in rows} == owners
    assert all((len(r) == 3) == (r[1] == agent.name) for r in rows), "tokens of held items"
