"""What a fault run is made of: cluster size, load, horizons, bounds.

Rules: a TortureConfig is frozen and checked on construction; a bad value raises
ValueError naming the field. Times are virtual seconds. Horizons, reap and sync
times are short by default so that a run reaches them in virtual minutes; the
code paths are the agent's own. `from_json` takes untrusted input: known fields
only, each of its own type.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from gossip.runtime.store.settings import StoreSettings

FAULT_KINDS = (
    "kill",
    "stop",
    "wipe",
    "partition",
    "oneway",
    "isolate",
    "loss",
    "duplicate",
    "reorder",
    "delay",
    "pause",
    "clock",
    "outage",
    "disk_full",
    "disk_error",
    "disk_slow",
)
MAX_NODES = 16


@dataclass(frozen=True)
class TortureConfig:
    nodes: int = 5
    duration: float = 120.0
    """Virtual seconds of load and faults; healing and the checks come after."""
    faults: tuple[str, ...] = FAULT_KINDS
    fault_every: float = 15.0
    """Mean virtual seconds between fault starts."""
    clients: int = 4
    rate: float = 50.0
    """Client operations per virtual second, all clients together."""
    shared_keys: int = 12
    private_keys: int = 3
    """Keys each client alone writes (for the read-your-writes check)."""
    items: int = 8
    """Declared ownership items."""
    replicas: int = 3
    partitions: int = 16
    horizon: float = 30.0
    """The store's tombstone horizon, s."""
    gc_interval: float = 5.0
    sync_interval: float = 1.0
    roots_by_datagram: bool = StoreSettings.roots_by_datagram
    """The store's roots checks by datagram (the agent's default unless set)."""
    request_timeout: float = 2.0
    client_timeout: float = 5.0
    reap: float = 20.0
    """Membership dead_reap_time, s."""
    settle: float = 2.0
    """Ownership settle time, s."""
    max_clock_step_ms: int = 3_600_000
    converge_bound: float = 60.0
    """After healing, replica digests must agree within this (checker 4)."""
    owner_bound: float = 30.0
    """After healing, every item has one owner within this (checker 5)."""
    grace: float = 30.0
    """A member declared dead this long after a fault touching it ends is still excused."""

    def __post_init__(self) -> None:
        if not 1 <= self.nodes <= MAX_NODES:
            raise ValueError(f"nodes: must be 1..{MAX_NODES}")
        unknown = set(self.faults) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"faults: unknown kinds {sorted(unknown)} (known: {FAULT_KINDS})")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{f.name}: must be a finite number >= 0")
        if not 0 < self.duration <= 86_400:
            raise ValueError("duration: must be 0 < duration <= 86400")
        if self.horizon < 1 or self.reap < 1:
            raise ValueError("horizon, reap: at least 1 s")
        if self.partitions < 1 or self.partitions & (self.partitions - 1):
            raise ValueError("partitions: a power of two")
        if not 1 <= self.replicas <= self.nodes:
            raise ValueError("replicas: 1..nodes")
        for name in ("clients", "shared_keys", "private_keys", "items"):
            if not 0 <= getattr(self, name) <= 1000:
                raise ValueError(f"{name}: 0..1000")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f"n{i}" for i in range(1, self.nodes + 1))

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["faults"] = list(self.faults)
        return out

    @classmethod
    def from_json(cls, raw: Any) -> TortureConfig:
        if not isinstance(raw, dict):
            raise ValueError("config: must be an object")
        kinds = {f.name: type(getattr(cls(), f.name)) for f in fields(cls)}
        values: dict[str, Any] = {}
        for name, value in raw.items():
            kind = kinds.get(name)
            if kind is None:
                raise ValueError(f"config.{name}: unknown field")
            if kind is tuple:
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ValueError(f"config.{name}: must be a list of strings")
                value = tuple(value)
            elif kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            elif type(value) is not kind:
                raise ValueError(f"config.{name}: must be {kind.__name__}")
            values[name] = value
        return cls(**values)
