"""Anti-entropy: the period per membership profile unless set; expired tombstones refused."""

from __future__ import annotations

import argparse

import pytest

from gossip.core.store.hlc import Timestamp
from gossip.core.store.record import Record
from gossip.runtime.clock import SystemClock
from gossip.runtime.settings import SettingsError
from gossip.runtime.store.settings import SYNC_INTERVALS, StoreSettings, from_sources
from gossip.runtime.store.storage import KVStorage
from gossip.runtime.store.sync import HorizonReplica


def test_an_unset_interval_follows_the_profile() -> None:
    settings = from_sources({}, None)
    assert settings.sync_interval is None
    got = {p: settings.for_profile(p).sync_interval for p in ("local", "lan", "wan")}
    assert got == SYNC_INTERVALS and got["local"] < got["lan"] < got["wan"]


def test_a_set_interval_wins_over_the_profile() -> None:
    from_file = from_sources({"sync_interval": 3}, None)
    assert from_file.for_profile("wan").sync_interval == 3.0
    flags = argparse.Namespace(kv_sync_interval=0.5)
    assert from_sources({"sync_interval": 3}, flags).for_profile("lan").sync_period == 0.5


@pytest.mark.parametrize("bad", [0, -1.0, 10 * 86_400.0])
def test_a_bad_interval_names_the_setting(bad: float) -> None:
    with pytest.raises(SettingsError, match="sync_interval"):
        StoreSettings(sync_interval=bad).checked()


def test_a_sync_refuses_expired_tombstones_of_keys_it_does_not_hold() -> None:
    storage = KVStorage(None, lambda key: 0)
    clock = SystemClock()
    now = clock.wall_ms()
    old = Timestamp(now - 10_000, 0, "b")
    storage.put(Record("held", b"v", Timestamp(now - 20_000, 0, "a")))
    replica = HorizonReplica(storage, 0, horizon_ms=5_000, wall_ms=clock.wall_ms)
    fresh = Record("fresh", None, Timestamp(now, 0, "b"))
    replica.apply([Record("gone", None, old), Record("held", None, old), fresh])
    assert storage.get("gone") is None, "an expired tombstone for an unknown key is refused"
    held = storage.get("held")
    assert held is not None and held.deleted, "it still deletes a live copy held here"
    assert storage.get("fresh") == fresh
    storage.close()
