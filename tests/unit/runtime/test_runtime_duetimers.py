"""DueTimers: order, ties, an earlier time waking the task, a raising function."""

from __future__ import annotations

import trio
import trio.testing

from gossip.runtime.duetimers import DueTimers


async def test_runs_in_time_order_with_ties_in_insertion_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    timers = DueTimers()
    ran: list[tuple[str, float]] = []

    def note(label: str) -> None:
        ran.append((label, trio.current_time()))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(timers.run)
        start = trio.current_time()
        timers.at(start + 3, lambda: note("c"))
        timers.at(start + 1, lambda: note("a"))
        timers.at(start + 1, lambda: note("b"))
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    assert [label for label, _ in ran] == ["a", "b", "c"]
    assert [round(at - start, 6) for _, at in ran] == [1, 1, 3]
    assert len(timers) == 0


async def test_an_earlier_time_wakes_the_task(autojump_clock: trio.testing.MockClock) -> None:
    timers = DueTimers()
    ran: list[float] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(timers.run)
        start = trio.current_time()
        timers.at(start + 100, lambda: ran.append(trio.current_time()))
        await trio.sleep(1)  # the task now sleeps until +100
        timers.at(start + 2, lambda: ran.append(trio.current_time()))
        await trio.sleep(3)
        assert [round(at - start, 6) for at in ran] == [2]
        nursery.cancel_scope.cancel()
    assert len(timers) == 1  # the +100 one never ran


async def test_a_raising_function_does_not_stop_the_others(
    autojump_clock: trio.testing.MockClock,
) -> None:
    timers = DueTimers()
    ran: list[str] = []

    def boom() -> None:
        raise ValueError("boom")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(timers.run)
        now = trio.current_time()
        timers.at(now + 1, boom)
        timers.at(now + 1, lambda: ran.append("after"))
        timers.at(now + 2, lambda: ran.append("later"))
        await trio.sleep(3)
        nursery.cancel_scope.cancel()
    assert ran == ["after", "later"]


async def test_a_function_may_add_another(autojump_clock: trio.testing.MockClock) -> None:
    timers = DueTimers()
    ran: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(timers.run)
        now = trio.current_time()
        timers.at(now + 1, lambda: timers.at(now + 2, lambda: ran.append("second")))
        timers.at(now + 1, lambda: timers.at(now, lambda: ran.append("already due")))
        await trio.sleep(3)
        nursery.cancel_scope.cancel()
    assert ran == ["already due", "second"]


async def test_nothing_runs_after_run_ended(autojump_clock: trio.testing.MockClock) -> None:
    timers = DueTimers()
    ran: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(timers.run)
        timers.at(trio.current_time() + 5, lambda: ran.append("late"))
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    await trio.sleep(10)
    assert ran == []
