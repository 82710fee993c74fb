"""`gossip agent` signals, in-process: SIGTERM leaves, a second one forces, SIGHUP reloads."""

from __future__ import annotations

import os
import signal

import pytest
import trio

from gossip.cli.agent_cmd import _main
from gossip.runtime import logconfig
from gossip.runtime.agent import Agent
from gossip.runtime.service import Service
from gossip.runtime.settings import AgentSettings


class SlowLeaver(Service):
    name = "slow"

    def __init__(self) -> None:
        self.leaving = trio.Event()

    async def before_leave(self) -> None:
        self.leaving.set()
        await trio.sleep_forever()  # cut at LEAVE_HOOK_TIMEOUT unless forced first


def _agent(*services: Service) -> Agent:
    agent = Agent(AgentSettings(name="sig", bind=("127.0.0.1", 0), api=None, profile="local"))
    for service in services:
        agent.add_service(service)
    return agent


async def _running(agent: Agent) -> None:
    with trio.fail_after(5):
        while agent.self_info() is None:  # noqa: ASYNC110
            await trio.sleep(0.01)


async def test_sigterm_leaves_gracefully_and_exits_0() -> None:
    agent = _agent()
    async with trio.open_nursery() as nursery:
        result: list[int] = []

        async def run() -> None:
            result.append(await _main(agent, {}, None))

        nursery.start_soon(run)
        await _running(agent)
        os.kill(os.getpid(), signal.SIGTERM)
    assert result == [0]
    assert agent.leaving and agent.left.is_set()


async def test_a_second_signal_forces_exit_with_1() -> None:
    slow = SlowLeaver()
    agent = _agent(slow)
    async with trio.open_nursery() as nursery:
        result: list[int] = []

        async def run() -> None:
            result.append(await _main(agent, {}, None))

        nursery.start_soon(run)
        await _running(agent)
        with trio.fail_after(2):
            os.kill(os.getpid(), signal.SIGINT)
            await slow.leaving.wait()
            os.kill(os.getpid(), signal.SIGINT)
    assert result == [1]
    assert not agent.left.is_set()


async def test_sighup_reloads_the_log_level(monkeypatch: pytest.MonkeyPatch) -> None:
    agent = _agent()
    logconfig.set_level("info")
    monkeypatch.setenv("GOSSIP_LOG_LEVEL", "debug")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_main, agent, {}, None)
        await _running(agent)
        os.kill(os.getpid(), signal.SIGHUP)
        with trio.fail_after(2):
            while logconfig._threshold != 10:  # noqa: ASYNC110
                await trio.sleep(0.01)
        agent.stop()
    logconfig.set_level("info")
