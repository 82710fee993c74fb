"""Several ownership state machines fed the same membership history at different delays
end up with the same table and each holds exactly the declared items it owns."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from gossip.core.ownership.assignment import ItemAcquired, ItemReleased, Ownership
from gossip.core.types import MemberInfo, MemberState

OBSERVERS = ("a", "b", "c")  # never fail
OTHERS = ("d", "e", "f")  # join, fail, leave, come back, at random
ITEMS = [f"item-{i}" for i in range(30)]
SETTLE, COALESCE = 2.0, 0.3
ALIVE, SUSPECT, DEAD, LEFT = (
    MemberState.ALIVE,
    MemberState.SUSPECT,
    MemberState.DEAD,
    MemberState.LEFT,
)

changes = st.lists(
    st.tuples(
        st.floats(min_value=0.05, max_value=3.0),  # gap since the previous change
        st.sampled_from(OTHERS),
        st.sampled_from([ALIVE, SUSPECT, DEAD, LEFT]),
    ),
    max_size=12,
)
final_states = st.tuples(*[st.sampled_from([ALIVE, DEAD, LEFT]) for _ in OTHERS])
delays = st.lists(st.floats(min_value=0.0, max_value=0.8), min_size=3, max_size=3)


def snapshot(states: dict[str, MemberState]) -> list[MemberInfo]:
    return [MemberInfo(n, ("10.0.0.1", 7946), s, 1) for n, s in states.items()]


@settings(max_examples=60, deadline=None)
@given(changes, final_states, delays)
def test_observers_agree_once_quiet_and_hold_exactly_their_items(
    history: list[tuple[float, str, MemberState]],
    final: tuple[MemberState, ...],
    delay: list[float],
) -> None:
    # The true history: everyone alive at 0, the random changes, then the final states.
    t = 0.0
    timeline: list[tuple[float, str, MemberState]] = []
    for gap, name, state in history:
        t += gap
        timeline.append((t, name, state))
    t += 0.1
    timeline += [(t, name, state) for name, state in zip(OTHERS, final, strict=True)]
    quiet = t + max(delay) + SETTLE + COALESCE + 0.1

    nodes = {
        n: Ownership(n, settle_time=SETTLE, coalesce_time=COALESCE, partitions=1 << 8, items=ITEMS)
        for n in OBSERVERS
    }
    for observer, lag in zip(OBSERVERS, delay, strict=True):
        o = nodes[observer]
        view = dict.fromkeys(OBSERVERS + OTHERS, ALIVE)
        inputs = [(0.0, None, ALIVE)] + [(at + lag, n, s) for at, n, s in timeline]
        for at, name, state in inputs:
            drive(o, at)
            if name is not None:
                view[name] = state
            o.observe(at, snapshot(view))
        drive(o, quiet)

    expected = set(OBSERVERS) | {n for n, s in zip(OTHERS, final, strict=True) if s == ALIVE}
    tables = [nodes[n].table for n in OBSERVERS]
    assert all(set(t.members) == expected for t in tables)
    assert len({tuple(t.first_owners().tolist()) for t in tables}) == 1
    for name, o in nodes.items():
        assert set(o.held()) == {i for i in ITEMS if o.owner(i) == name}
        # Acquire and release alternate per item, and every token is new.
        events = [e for e in o.take_outputs() if isinstance(e, ItemAcquired | ItemReleased)]
        tokens = [e.token for e in events if isinstance(e, ItemAcquired)]
        assert tokens == sorted(set(tokens))
        for item in ITEMS:
            kinds = [type(e) for e in events if e.item == item]
            assert all(k != prev for prev, k in itertools.pairwise(kinds))


def drive(o: Ownership, until: float) -> None:
    """Fire every timer due up to `until`, as a shell would."""
    while (deadline := o.next_deadline()) is not None and deadline <= until:
        o.handle_timeout(deadline, wall_ms=int(deadline * 1000))
