"""The event-handler runner with real subprocesses: environment and stdin,
order within one handler, a hanging handler killed at its timeout, reload."""

from __future__ import annotations

from pathlib import Path

import trio

from gossip.core.types import MemberInfo, MemberState
from gossip.runtime.handlers.runner import EventHandlers
from gossip.runtime.handlers.spec import parse_handler
from gossip.runtime.metrics import Registry
from gossip.runtime.service import MemberEvent


def _self() -> tuple[str, str, dict[str, str]]:
    return "me", "127.0.0.1:7946", {"role": "web", "dc-zone": "a"}


def _joined(name: str) -> MemberEvent:
    info = MemberInfo(name, ("10.0.0.2", 7946), MemberState.ALIVE, 3, {"k": "v"}, 0.0)
    return MemberEvent("joined", name, info, 0.0)


def _user(name: str, payload: str, ltime: int) -> MemberEvent:
    return MemberEvent("user", name, None, 0.0, {"ltime": ltime, "payload": payload})


async def test_a_handler_gets_the_environment_and_the_member_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "out"
    script = f'{{ env | grep ^GOSSIP_ | sort; cat; }} >> "{out}"'
    runner = EventHandlers(_self, Registry(), timeout=10)
    runner.set_specs([parse_handler(f"member-join,user:deploy={script}")])
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        runner.submit(_joined("n2"))
        runner.submit(_user("other", "ignored", 4))
        runner.submit(_user("deploy", "v7", 5))
        await runner.wait_runs(2)
        nursery.cancel_scope.cancel()
    text = out.read_text()
    assert "GOSSIP_EVENT=member-join" in text
    assert "GOSSIP_SELF_NAME=me" in text
    assert "GOSSIP_TAG_ROLE=web" in text and "GOSSIP_TAG_DC_ZONE=a" in text
    assert "n2\t10.0.0.2:7946\talive\tk=v\n" in text
    assert "GOSSIP_USER_EVENT=deploy" in text and "GOSSIP_USER_LTIME=5" in text
    assert text.endswith("v7")
    assert "ignored" not in text
    assert [status for _, _, status in runner.finished] == [0, 0]


async def test_runs_of_one_handler_follow_event_order(tmp_path: Path) -> None:
    out = tmp_path / "order"
    runner = EventHandlers(_self, Registry(), timeout=10)
    runner.set_specs([parse_handler(f'user=cat >> "{out}"; echo >> "{out}"')])
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        for i in range(6):
            runner.submit(_user("e", str(i), i))
        await runner.wait_runs(6)
        nursery.cancel_scope.cancel()
    assert out.read_text().split() == [str(i) for i in range(6)]


async def test_a_hanging_handler_is_killed_at_its_timeout_and_the_next_event_runs(
    tmp_path: Path,
) -> None:
    pidfile = tmp_path / "child"
    # The shell's child would outlive a kill of the shell alone.
    hang = f'sleep 30 & echo $! > "{pidfile}"; wait'
    registry = Registry()
    runner = EventHandlers(_self, registry, timeout=0.5)
    runner.set_specs([parse_handler(f"user:hang={hang}"), parse_handler("user:ok=exit 3")])
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        runner.submit(_user("hang", "", 1))
        runner.submit(_user("ok", "", 2))
        await runner.wait_runs(2)
        nursery.cancel_scope.cancel()
    results = {cmd: status for cmd, _, status in runner.finished}
    assert results == {hang: None, "exit 3": 3}
    rendered = registry.render()
    assert 'event_handler_runs_total{result="timeout"} 1' in rendered
    assert 'event_handler_runs_total{result="failed"} 1' in rendered
    # The kill reached the whole group; the child's exit itself takes a moment.
    child = int(pidfile.read_text())
    with trio.move_on_after(5):
        while _running(child):  # noqa: ASYNC110 - polling /proc, nothing to wait on
            await trio.sleep(0.02)
    assert not _running(child)


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan may wait for a reaper)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


async def test_replaced_handlers_take_the_events_from_then_on(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    runner = EventHandlers(_self, Registry(), timeout=10)
    runner.set_specs([parse_handler(f'cat >> "{first}"')])
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        runner.submit(_user("e", "a", 1))
        runner.set_specs([parse_handler(f'cat >> "{second}"')])
        runner.submit(_user("e", "b", 2))
        await runner.wait_runs(2)
        nursery.cancel_scope.cancel()
    assert (first.read_text(), second.read_text()) == ("a", "b")
