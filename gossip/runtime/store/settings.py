"""Settings of the replicated store: the `[store]` table, flags, defaults.

Rules: every value is checked here and a bad one raises SettingsError naming
the setting. `partitions` and `replicas` must be the same on every agent of
a cluster (they decide where keys live); the rest may differ per node.
`sync_interval` unset means the membership profile's (SYNC_INTERVALS): each
round costs every replica a few messages, so an idle cluster should not run
one every second; rounds are jittered (+-SYNC_JITTER) so agents spread out.
The agent's stream frame limit must hold a full sync message plus the biggest
record (check_frame_limit), which is how a record bigger than the sync budget
still travels.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from gossip.core.store.placement import DEFAULT_PARTITIONS, DEFAULT_REPLICAS
from gossip.core.store.record import MAX_KEY_BYTES, MAX_NODE_BYTES, MAX_VALUE_BYTES
from gossip.runtime.settings import SettingsError, flag_values, layered

DAY_S = 86_400.0
SYNC_INTERVALS = {"local": 2.0, "lan": 10.0, "wan": 30.0}
SYNC_JITTER = 0.2
FLAGS = {
    "replicas": "kv_replicas",
    "sync_interval": "kv_sync_interval",
    "tombstone_horizon": "kv_tombstone_horizon",
}
"""The settings that have a flag, and its argparse attribute."""
BIGGEST_RECORD = MAX_KEY_BYTES + MAX_VALUE_BYTES + MAX_NODE_BYTES + 1024
"""Bytes of the largest record on the wire, with room for its encoding."""


@dataclass(frozen=True)
class StoreSettings:
    replicas: int | None = DEFAULT_REPLICAS
    """Copies of each partition; None = every member ("all")."""
    partitions: int = DEFAULT_PARTITIONS
    sync_interval: float | None = None
    """Anti-entropy period, s; None = SYNC_INTERVALS[profile] (see for_profile)."""
    session_timeout: float = 10.0
    request_timeout: float = 2.0
    tombstone_horizon: float = DAY_S
    gc_interval: float = 60.0
    sync_max_bytes: int = 4 << 20
    synchronous: str = "NORMAL"
    handover_timeout: float = 30.0
    """How long a graceful leave may spend handing partitions over, s."""
    roots_by_datagram: bool = True
    """Send roots checks that fit one datagram by UDP (gossip.runtime.store.rootsdatagram);
    false: always by stream."""

    def for_profile(self, profile: str) -> StoreSettings:
        """These settings with an unset sync_interval taken from the membership profile."""
        if self.sync_interval is not None:
            return self
        return replace(self, sync_interval=SYNC_INTERVALS.get(profile, SYNC_INTERVALS["lan"]))

    @property
    def sync_period(self) -> float:
        return SYNC_INTERVALS["lan"] if self.sync_interval is None else self.sync_interval

    @property
    def horizon_ms(self) -> int:
        return int(self.tombstone_horizon * 1000)

    def checked(self) -> StoreSettings:
        p = self.partitions
        if p < 1 or p & (p - 1) or p > 4096:
            raise SettingsError("store.partitions", "must be a power of two from 1 to 4096")
        if self.replicas is not None and not 1 <= self.replicas <= 64:
            raise SettingsError("store.replicas", "must be 1..64 or 'all'")
        for name in (
            "sync_interval",
            "session_timeout",
            "request_timeout",
            "gc_interval",
            "handover_timeout",
        ):
            value = getattr(self, name)
            if value is not None and not 0 < value <= DAY_S:
                raise SettingsError(f"store.{name}", "must be a positive number of seconds")
        if self.tombstone_horizon < 1:
            raise SettingsError("store.tombstone_horizon", "must be at least 1 second")
        if not 64 << 10 <= self.sync_max_bytes <= 64 << 20:
            raise SettingsError("store.sync_max_bytes", "must be 64 KiB .. 64 MiB")
        if self.synchronous not in ("NORMAL", "FULL"):
            raise SettingsError("store.synchronous", "must be NORMAL or FULL")
        return self


def check_frame_limit(s: StoreSettings, max_stream_bytes: int) -> None:
    """The biggest record must fit one stream message beside a full sync budget
    (it then travels alone: gossip.core.store.antientropy)."""
    need = min(s.sync_max_bytes, max_stream_bytes // 2) + BIGGEST_RECORD
    if max_stream_bytes < need:
        raise SettingsError(
            "max_stream_bytes",
            f"must be at least {need} with these store settings, so that the biggest"
            f" record ({MAX_VALUE_BYTES} byte value) fits in one stream message",
        )


def _coerce(name: str, value: Any, kind: Any) -> Any:
    if name == "replicas":
        if value in ("all", None):
            return None
        kind = int
    if kind is bool:
        if not isinstance(value, bool):
            raise SettingsError(f"store.{name}", f"bad value {value!r}: true or false")
        return value
    try:
        if kind is int and isinstance(value, bool | float):
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        raise SettingsError(f"store.{name}", f"bad value {value!r}") from None


def from_sources(section: Mapping[str, Any], args: argparse.Namespace | None) -> StoreSettings:
    """Defaults, then the [store] table, then `--kv-*` flags."""
    kinds = {f.name: type(getattr(StoreSettings(), f.name)) for f in fields(StoreSettings)}
    kinds["replicas"] = int
    kinds["sync_interval"] = float
    from_file: dict[str, Any] = {}
    for name, value in section.items():
        if name not in kinds:
            raise SettingsError(f"store.{name}", "unknown setting")
        from_file[name] = _coerce(name, value, kinds[name])
    from_flags = {
        name: _coerce(name, value, kinds[name]) for name, value in flag_values(args, FLAGS).items()
    }
    return replace(StoreSettings(), **layered(from_flags, from_file)).checked()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("replicated store")
    group.add_argument("--kv-replicas", help="copies of each key: a number or 'all' (3)")
    group.add_argument(
        "--kv-sync-interval", type=float, help="anti-entropy period, s (local 2, lan 10, wan 30)"
    )
    group.add_argument(
        "--kv-tombstone-horizon", type=float, help="seconds a delete is remembered (86400)"
    )
