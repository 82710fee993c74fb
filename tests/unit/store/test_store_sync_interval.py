"""Anti-entropy: the period per membership profile unless set."""

from __future__ import annotations

import argparse

import pytest

from gossip.runtime.settings import SettingsError
from gossip.runtime.store.settings import SYNC_INTERVALS, StoreSettings, from_sources


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
