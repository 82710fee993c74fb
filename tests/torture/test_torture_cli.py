"""`gossip torture`: figures as JSON, a failing seed's schedule written and replayed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from gossip.cli import main
from gossip.core.store.record import Record
from gossip.runtime.store.settings import StoreSettings
from gossip.runtime.store.storage import KVStorage


def test_a_passing_run_prints_its_figures_and_verdicts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["torture", "--seed", "3", "--duration", "10", "--faults", "none", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True and out["figures"]["ops"] > 300
    assert out["figures"]["speed"] > 0 and out["figures"]["virtual_seconds"] > 10
    assert set(out["verdicts"]) >= {"lost_writes", "ownership", "membership"}


def test_a_failing_seed_writes_a_schedule_that_replays_the_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A broken build: every replica silently drops the writes of keys ending in 1.
    apply = KVStorage.apply

    def dropping(self: KVStorage, records: Sequence[Record], **kw: Any) -> int:
        kept = [r for r in records if not r.key.endswith("1")]
        return apply(self, kept, **kw) + len(records) - len(kept)

    monkeypatch.setattr(KVStorage, "apply", dropping)
    args = ["torture", "--seed", "1", "--faults", "outage", "--duration", "45", "--horizon", "10"]
    args += ["--reap", "8", "--fault-every", "6", "--rate", "20"]
    assert main([*args, "--shrink-runs", "0", "--out", str(tmp_path)]) == 1
    printed = capsys.readouterr().out
    assert "seed 1: FAILED lost_writes" in printed
    path = tmp_path / "torture-1.json"
    assert f"gossip torture --schedule {path}" in printed
    assert main(["torture", "--schedule", str(path), "--json", "--out", str(tmp_path)]) == 1
    replayed = json.loads(capsys.readouterr().out)
    assert replayed["seed"] == 1 and not replayed["verdicts"]["lost_writes"]["ok"]


@pytest.mark.parametrize(
    "bad", [["--seeds", "5..1"], ["--seeds", "x"], ["--faults", "meteor"], ["--nodes", "0"]]
)
def test_bad_arguments_exit_2_with_one_line(
    bad: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["torture", *bad]) == 2
    assert capsys.readouterr().err.startswith("gossip torture: ")


def test_an_unreadable_schedule_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{")
    assert main(["torture", "--schedule", str(path)]) == 2
    assert "not valid JSON" in capsys.readouterr().err


@pytest.mark.parametrize("choice", ["on", "off"])
def test_roots_by_datagram_reaches_every_agent_of_the_run(
    choice: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    checked = StoreSettings.checked

    def recording(self: StoreSettings) -> StoreSettings:
        seen.append(self.roots_by_datagram)
        return checked(self)

    monkeypatch.setattr(StoreSettings, "checked", recording)
    args = ["torture", "--seed", "2", "--duration", "3", "--faults", "none", "--nodes", "3"]
    assert main([*args, "--roots-by-datagram", choice, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True
    assert seen and set(seen) == {choice == "on"}
