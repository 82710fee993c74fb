"""Garbage-collector pauses as metrics: time spent in each generation's collections.

Rules: installed once per process (gc.callbacks is process-wide); the callback
does two clock reads and a dict update, nothing that allocates much. A full
(generation 2) collection walks every tracked object, so services that keep
millions of small objects alive make every such pause long; this shows it.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from gossip.runtime.metrics import Registry

_seconds: dict[int, float] = {0: 0.0, 1: 0.0, 2: 0.0}
_counts: dict[int, int] = {0: 0, 1: 0, 2: 0}
_started = 0.0
_installed = False


def _callback(phase: str, info: dict[str, Any]) -> None:
    global _started
    if phase == "start":
        _started = time.perf_counter()
    else:
        generation = int(info.get("generation", 2))
        _seconds[generation] = _seconds.get(generation, 0.0) + time.perf_counter() - _started
        _counts[generation] = _counts.get(generation, 0) + 1


def install(registry: Registry) -> None:
    global _installed
    if not _installed:
        gc.callbacks.append(_callback)
        _installed = True
    registry.gauge(
        "gc_seconds_total",
        "Seconds spent in garbage collection, by generation (process-wide).",
        ("generation",),
        lambda: {(str(g),): s for g, s in _seconds.items()},
    )
    registry.gauge(
        "gc_collections_total",
        "Garbage collections, by generation (process-wide).",
        ("generation",),
        lambda: {(str(g),): float(c) for g, c in _counts.items()},
    )
