"""The fixed seed set: every fault kind on a small cluster, a few virtual minutes each.

Each case is one seed of one fault kind, or of all kinds mixed (three seeds), or
of no fault at all (with three replicas, and with one). A case that fails
today because of a known store or ownership bug is marked xfail with
strict=True: when the fix lands it passes, turns red, and the marker must go.
An xfail case still fails outright (not xfail) if a checker other than the known
ones breaks, so the marker never hides a new failure.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from gossip.testing.torture.config import FAULT_KINDS, TortureConfig
from gossip.testing.torture.run import run_torture

SEED = 1


def config(faults: tuple[str, ...]) -> TortureConfig:
    return TortureConfig(
        duration=45.0,
        faults=faults,
        fault_every=6.0,
        rate=20.0,
        horizon=10.0,
        reap=8.0,
        gc_interval=2.0,
        owner_bound=15.0,
    )


def known(cases: str, why: str, *checkers: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(
        strict=True,
        raises=AssertionError,
        reason=f"known bug ({cases}): {why} ({', '.join(checkers)})",
    )


KNOWN: dict[str, tuple[set[str], pytest.MarkDecorator]] = {}
"""Cases that fail today because of a known bug, with the checkers they break (none now:
the last ones, stale quorum reads and undone deletes under partitions, were fixed by
the store's majority rule)."""


def _cases() -> list[object]:
    out: list[object] = []
    runs = [(kind, SEED) for kind in ("none", "r1", *FAULT_KINDS)]
    runs += [("all", 1), ("all", 2), ("all", 6)]
    for kind, seed in runs:
        name = kind if kind != "all" else f"all/{seed}"
        marks = [KNOWN[name][1]] if name in KNOWN else []
        out.append(pytest.param(kind, seed, marks=marks, id=name))
    return out


@pytest.mark.parametrize(("kind", "seed"), _cases())
def test_a_seed_of_each_fault_kind_passes_every_checker(kind: str, seed: int) -> None:
    faults = () if kind in ("none", "r1") else FAULT_KINDS if kind == "all" else (kind,)
    cfg = config(faults)
    if kind == "r1":  # one copy of each key, no faults at all
        cfg = replace(cfg, replicas=1)
    result = run_torture(seed, cfg)
    if faults:
        assert result.figures["faults_applied"] >= 3  # the kind was exercised
    name = kind if kind != "all" else f"all/{seed}"
    allowed = KNOWN.get(name, (set(), None))[0]
    unexpected = set(result.failed) - allowed
    if unexpected:
        shown = {n: result.verdicts[n].violations[:3] for n in sorted(unexpected)}
        pytest.fail(f"seed {seed} {kind}: checkers failed beyond the known bugs: {shown}")
    assert result.ok, {n: result.verdicts[n].violations[:3] for n in result.failed}
