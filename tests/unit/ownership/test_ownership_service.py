"""The ownership service in a trio program: settings, HTTP answers, handlers, the loop."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from gossip.core.ownership.assignment import ItemAcquired, ItemReleased
from gossip.core.types import MemberInfo, MemberState
from gossip.runtime.clock import SystemClock
from gossip.runtime.http import ApiError, ApiRequest
from gossip.runtime.metrics import Registry
from gossip.runtime.ownership.handlers import HandlerJob, ItemHandlers
from gossip.runtime.ownership.service import (
    OwnershipService,
    service_from_settings,
    store_prefix_source,
)
from gossip.runtime.service import MemberEvent
from gossip.runtime.settings import SettingsError

ITEMS = [f"job-{i}" for i in range(40)]


class FakeHost:
    """Just what the ownership service uses of an Agent."""

    def __init__(
        self, name: str, members: dict[str, MemberState], data_dir: Path | None = None
    ) -> None:
        self.name = name
        self.metrics = Registry()
        self.states = members
        self.data_dir = data_dir

    def members(self) -> list[MemberInfo]:
        return [MemberInfo(n, ("127.0.0.1", 1), s, 1) for n, s in self.states.items()]

    def wall_ms(self) -> int:
        return SystemClock().wall_ms()


def request(**query: str) -> ApiRequest:
    return ApiRequest("GET", "/v1/owner", query, {}, b"")


def make_service(host: FakeHost, **kwargs: Any) -> OwnershipService:
    svc = OwnershipService(
        items=ITEMS, settle_time=2.0, coalesce_time=0.2, partitions=1 << 10, **kwargs
    )
    svc.attach(host)  # type: ignore[arg-type]
    return svc


def changed(svc: OwnershipService, host: FakeHost, name: str, state: MemberState) -> None:
    host.states[name] = state
    svc.member_event(MemberEvent(state.label, name, None, trio.current_time()))


async def test_the_service_settles_then_moves_only_a_dead_members_items(
    autojump_clock: trio.testing.MockClock,
) -> None:
    host = FakeHost("a", {"a": MemberState.ALIVE, "b": MemberState.ALIVE})
    svc = make_service(host)
    seen: list[ItemAcquired | ItemReleased] = []
    svc.subscribe(seen.append)
    async with trio.open_nursery() as nursery:
        await nursery.start(svc.run)
        with pytest.raises(ApiError) as unsettled:
            await svc._http_owner(request(key="job-1"))
        assert unsettled.value.status == 503
        await trio.sleep(2.5)
        assert set(svc.ownership.table.members) == {"a", "b"}
        mine = {i for i in ITEMS if svc.owner(i) == "a"}
        assert set(svc.held()) == mine == {e.item for e in seen}
        assert all(svc.owns(i) for i in mine)
        changed(svc, host, "b", MemberState.SUSPECT)
        await trio.sleep(5)
        assert {i for i in ITEMS if svc.owner(i) == "a"} == mine, "suspect keeps its items"
        changed(svc, host, "b", MemberState.DEAD)
        await trio.sleep(0.5)
        assert set(svc.held()) == set(ITEMS)
        takeovers = [e for e in seen if e.item not in mine]
        assert {e.item for e in takeovers} == set(ITEMS) - mine
        assert all(isinstance(e, ItemAcquired) and e.reason == "owner_failed" for e in takeovers)
        await svc.before_leave()
        assert svc.held() == {}
        assert sum(isinstance(e, ItemReleased) and e.reason == "leaving" for e in seen) == 40
        nursery.cancel_scope.cancel()


async def test_get_owner_validates_its_query_and_answers_ranked_owners(
    autojump_clock: trio.testing.MockClock,
) -> None:
    host = FakeHost("a", {"a": MemberState.ALIVE, "b": MemberState.ALIVE, "c": MemberState.ALIVE})
    svc = make_service(host)
    async with trio.open_nursery() as nursery:
        await nursery.start(svc.run)
        await trio.sleep(3)
        for bad in ({}, {"key": ""}, {"key": "k", "n": "0"}, {"key": "k", "n": "65"},
                    {"key": "k", "n": "x"}, {"key": "k" * 1025}, {"key": "k", "n": "\u00b2"},
                    {"key": "k", "n": "9" * 5000}):  # fmt: skip
            with pytest.raises(ApiError) as err:
                await svc._http_owner(request(**bad))
            assert err.value.status == 400
        body = json.loads((await svc._http_owner(request(key="job-3", n="3"))).body)
        assert body["owners"] == svc.owners("job-3", 3) and len(set(body["owners"])) == 3
        assert body["owner"] == svc.owner("job-3") and body["members"] == 3
        nursery.cancel_scope.cancel()


def test_settings_come_from_the_config_table_and_flags_win() -> None:
    args = argparse.Namespace(item=["extra"], on_acquire="run-me", on_release=None, settle_time=0.5)
    svc = service_from_settings({"items": ["x", "y", "x"], "on_release": "stop-me"}, args)
    svc.attach(FakeHost("a", {}))  # type: ignore[arg-type]
    assert svc.ownership.items == {"x", "y", "extra"}
    assert svc.ownership.settle_time == 0.5
    assert svc.handlers.commands == {"acquired": "run-me", "released": "stop-me"}


@pytest.mark.parametrize(
    ("section", "setting"),
    [
        ({"itemz": []}, "ownership.itemz"),
        ({"items": "one"}, "ownership.items"),
        ({"items": [1]}, "ownership.items"),
        ({"items": ["x" * 300]}, "ownership.items"),
        ({"settle_time": -1}, "ownership.settle_time"),
        ({"settle_time": "soon"}, "ownership.settle_time"),
        ({"handler_timeout": float("inf")}, "ownership.handler_timeout"),
        ({"on_acquire": 3}, "ownership.on_acquire/on_release"),
    ],
)
def test_bad_settings_name_the_setting(section: dict[str, Any], setting: str) -> None:
    with pytest.raises(SettingsError) as err:
        service_from_settings(section, None)
    assert err.value.setting == setting


async def test_handlers_get_the_item_in_the_environment_and_failures_do_not_block(
    tmp_path: Path,
) -> None:
    out = tmp_path / "runs"
    commands = {
        "acquired": 'echo "$GOSSIP_EVENT $GOSSIP_ITEM $GOSSIP_TOKEN $GOSSIP_REASON $GOSSIP_NODE"'
        f' >> {out}; [ "$GOSSIP_ITEM" != bad ] || exit 3;'
        f' [ "$GOSSIP_ITEM" != slow ] || {{ sleep 30 & echo $! > {tmp_path}/child; wait; }};'
        ' [ "$GOSSIP_ITEM" != chatty ] || head -c 20000000 /dev/zero',
        "released": None,
    }
    metrics = Registry()
    handlers = ItemHandlers("n1", commands, metrics, timeout=1.0)
    async with trio.open_nursery() as nursery:
        for item in ("slow", "bad", "ok", "chatty"):
            handlers.submit(nursery, HandlerJob("acquired", item, 7, "initial"))
        handlers.submit(nursery, HandlerJob("released", "ok", 7, "leaving"))  # no command: no run
        with trio.fail_after(10):
            while len(handlers.completed) < 3:  # noqa: ASYNC110 - polling a plain list
                await trio.sleep(0.05)
        # The slow handler is still running while the others finished.
        done = {job.item: status for job, status in handlers.completed}
        assert done == {"bad": 3, "ok": 0, "chatty": 0}
    statuses = {job.item: status for job, status in handlers.completed}
    assert statuses == {"bad": 3, "ok": 0, "chatty": 0, "slow": None}, "the hang was killed"
    child = int((tmp_path / "child").read_text())
    with trio.fail_after(5):  # the whole process group went, not just the shell
        while _proc_state(child) not in ("gone", "Z"):  # noqa: ASYNC110 - another process
            await trio.sleep(0.05)
    lines = sorted(out.read_text().splitlines())
    assert lines == [f"acquired {i} 7 initial n1" for i in ("bad", "chatty", "ok", "slow")]
    rendered = metrics.render()
    assert 'result="timeout"' in rendered and 'result="failed"' in rendered


async def test_a_graceful_leave_waits_for_the_release_handlers(tmp_path: Path) -> None:
    out = tmp_path / "released"
    host = FakeHost("a", {"a": MemberState.ALIVE})
    svc = OwnershipService(
        items=ITEMS,
        settle_time=0.05,
        coalesce_time=0.01,
        partitions=1 << 10,
        on_release=f'sleep 0.05; echo "$GOSSIP_ITEM $GOSSIP_REASON" >> {out}',
    )
    svc.attach(host)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(svc.run)
        with trio.fail_after(10):
            while len(svc.held()) < len(ITEMS):  # noqa: ASYNC110 - polling the service state
                await trio.sleep(0.02)
        await svc.before_leave()
        lines = out.read_text().splitlines()
        assert sorted(lines) == sorted(f"{i} leaving" for i in ITEMS)
        nursery.cancel_scope.cancel()


async def test_items_from_a_source_are_polled_and_a_failing_source_keeps_the_last_names(
    autojump_clock: trio.testing.MockClock,
) -> None:
    @dataclass
    class Rec:
        key: str

    class FakeStore:
        keys = ["work/a", "work/b", "work/"]
        fail = False

        async def list_page(
            self, prefix: str, limit: int = 1000, after: str = ""
        ) -> tuple[list[Rec], str | None]:
            if self.fail:
                raise RuntimeError("no quorum")
            found = sorted(k for k in self.keys if k.startswith(prefix) and k > after)
            return [Rec(k) for k in found[:limit]], found[limit - 1] if len(found) > limit else None

    store = FakeStore()
    host = FakeHost("a", {"a": MemberState.ALIVE})
    svc = OwnershipService(
        items=["static"],
        settle_time=0.0,
        coalesce_time=0.0,
        partitions=1 << 10,
        item_source=store_prefix_source(store, "work/"),
        source_interval=5.0,
    )
    svc.attach(host)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(svc.run)
        await trio.sleep(1)
        assert set(svc.held()) == {"static", "a", "b"}
        store.keys = ["work/b", "work/c"]
        await trio.sleep(5)
        assert set(svc.held()) == {"static", "b", "c"}
        store.fail = True
        await trio.sleep(5)
        assert set(svc.held()) == {"static", "b", "c"}
        svc.set_items(["other"])
        assert set(svc.held()) == {"other", "b", "c"}
        nursery.cancel_scope.cancel()


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return "gone"
