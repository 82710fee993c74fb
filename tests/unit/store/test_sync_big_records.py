"""A record larger than the sync budget still ships, and never blocks the ones behind it."""

from __future__ import annotations

import pytest

from gossip.core.store.antientropy import SyncSession, answer
from gossip.core.store.hlc import Timestamp
from gossip.core.store.memory_replica import MemoryReplica
from gossip.core.store.record import MAX_VALUE_BYTES, Record
from gossip.runtime.settings import SettingsError

BUDGET = 64 << 10


def sessions_until_equal(a: MemoryReplica, b: MemoryReplica, limit: int) -> int:
    for n in range(1, limit + 1):
        session = SyncSession(a, 0, max_bytes=BUDGET)
        request: bytes | None = session.start()
        while request is not None:
            response, _ = answer(lambda p: b, request, max_bytes=BUDGET)
            request = session.receive(response)
        if a.items() == b.items():
            return n
    return limit + 1


@pytest.mark.parametrize("holder", ["initiator", "responder"])
def test_a_record_bigger_than_the_budget_ships_alone_and_the_rest_follow(holder: str) -> None:
    full, empty = MemoryReplica(), MemoryReplica()
    full.put(Record("big", b"x" * MAX_VALUE_BYTES, Timestamp(1000, 0, "a")))
    for i in range(200):
        full.put(Record(f"small-{i}", b"v" * 500, Timestamp(1001 + i, 0, "a")))
    a, b = (full, empty) if holder == "initiator" else (empty, full)
    assert sessions_until_equal(a, b, limit=12) <= 12
    assert empty.get("big") == full.get("big")


def test_an_agent_refuses_a_frame_limit_that_the_biggest_record_cannot_fit() -> None:
    from gossip.runtime.store.settings import StoreSettings, check_frame_limit

    with pytest.raises(SettingsError) as info:
        check_frame_limit(StoreSettings(), max_stream_bytes=1 << 20)
    assert "max_stream_bytes" in str(info.value)
    check_frame_limit(StoreSettings(), max_stream_bytes=8 << 20)
