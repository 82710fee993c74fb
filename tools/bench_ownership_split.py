"""Virtual-time figures for ownership across a split and a heal, over many seeds.

Run from the repository root: `python tools/bench_ownership_split.py --seeds 40`. It drives the
agents of tests/unit/ownership/test_ownership_split.py (in-memory network, MockClock, lan
profile, settle 2 s, coalesce 0.2 s, 30 items) and prints min / median / max virtual seconds:
- quorum on, 5 agents split 2 | 3: until the minority has released everything, until the
  majority holds every item, and from the heal until every item has one owner that holds
  the highest token issued for it; and the items held on both sides at once while apart
  (polled every 0.05 s);
- quorum off, 3 agents split 1 | 2: from the heal until the same holds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import structlog
import trio
import trio.testing

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gossip.core.types import MemberState
from tests.unit.ownership.test_ownership_split import (
    ITEMS,
    Split,
    split_cluster,
    wait_until,
)


def settled_at_the_top(c: Split, nodes: list[int]) -> bool:
    """Every item has one owner, and that owner holds the highest token issued for it."""
    return (
        c.settled(nodes)
        and c.one_owner_each()
        and all(c.services[c.holders(i)[0]].held()[i] == c.issued(i) for i in ITEMS)
    )


async def with_quorum(seed: int) -> tuple[float, float, float, int]:
    async with split_cluster(5, quorum=True, seed=seed) as c:
        both: set[str] = set()

        async def watch() -> None:
            while True:
                both.update(i for i in ITEMS if len({h < 2 for h in c.holders(i)}) > 1)
                await trio.sleep(0.05)

        start = trio.current_time()
        async with trio.open_nursery() as watcher:
            watcher.start_soon(watch)
            c.cut([0, 1], [2, 3, 4])
            await wait_until(lambda: not c.services[0].held() and not c.services[1].held(), 120)
            released = trio.current_time() - start
            await wait_until(lambda: c.held_by([2, 3, 4]), 120)
            taken = trio.current_time() - start
            watcher.cancel_scope.cancel()
        c.net.heal()
        healed = trio.current_time()
        await wait_until(lambda: settled_at_the_top(c, list(range(5))), 300)
        return released, taken, trio.current_time() - healed, len(both)


async def without_quorum(seed: int) -> float:
    async with split_cluster(3, quorum=False, seed=seed) as c:
        c.cut([0], [1, 2])
        await wait_until(
            lambda: (
                c.sees(0, [1, 2], MemberState.DEAD)
                and c.sees(1, [0], MemberState.DEAD)
                and c.settled([1, 2])
            ),
            120,
        )
        await wait_until(lambda: len(c.services[0].held()) == len(ITEMS), 10)
        c.net.heal()
        healed = trio.current_time()
        await wait_until(lambda: settled_at_the_top(c, [0, 1, 2]), 300)
        return trio.current_time() - healed


def line(name: str, values: list[float]) -> str:
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{name:<58} min {low:5.1f}  median {mid:5.1f}  max {high:5.1f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=40)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    seeds = range(1, args.seeds + 1)

    def clock() -> trio.testing.MockClock:
        return trio.testing.MockClock(autojump_threshold=0)

    q = [trio.run(with_quorum, s, clock=clock()) for s in seeds]
    h = [trio.run(without_quorum, s, clock=clock()) for s in seeds]
    print(f"{args.seeds} seeds, virtual seconds")
    print(line("quorum, 2 | 3: cut -> minority released everything", [r[0] for r in q]))
    print(line("quorum, 2 | 3: cut -> majority holds every item", [r[1] for r in q]))
    print(line("quorum, 2 | 3: heal -> one owner each, highest token", [r[2] for r in q]))
    print(line("no quorum, 1 | 2: heal -> one owner each, highest token", h))
    print(f"items held on both sides at once while apart (quorum): {sum(r[3] for r in q)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
