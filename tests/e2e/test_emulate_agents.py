"""Agent processes under the emulator: kill -9 and pause reach a child that a
one-file executable's bootloader runs the agent in; a stop never leaves one."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from gossip.emulate.agents import Agent, AgentSpec, stop_all

pytestmark = pytest.mark.e2e

# Like a one-file executable: a parent that runs the real work in a child.
BOOTLOADER = ["sh", "-c", "sleep 60 & wait"]


def group(pgid: int) -> dict[int, str]:
    """pid -> state letter of every live process in a process group."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found[int(entry.name)] = fields[0]
    return found


def wait_for(check: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def spawn(tmp_path: Path, name: str) -> Agent:
    spec = AgentSpec(name, "127.0.0.1", [], "local", tmp_path, prefix=[], command=BOOTLOADER)
    agent = Agent(spec)
    agent.start()
    assert agent.pid is not None
    pid = agent.pid
    wait_for(lambda: len(group(pid)) == 2)
    return agent


def test_kill_and_pause_reach_the_whole_session(tmp_path: Path) -> None:
    agent = spawn(tmp_path, "a")
    pid = agent.pid
    assert pid is not None and os.getpgid(pid) == pid  # its own session
    agent.pause()
    wait_for(lambda: set(group(pid).values()) == {"T"})
    agent.resume()
    wait_for(lambda: "T" not in group(pid).values())
    agent.kill()
    wait_for(lambda: group(pid) == {})


def test_stop_all_leaves_nothing_even_when_paused(tmp_path: Path) -> None:
    agents = [spawn(tmp_path, "a"), spawn(tmp_path, "b")]
    agents[1].pause()
    stop_all(agents, timeout=1.0)
    for agent in agents:
        pid = agent.pid
        assert pid is not None and not agent.running()
        wait_for(lambda pid=pid: group(pid) == {}, timeout=2.0)
