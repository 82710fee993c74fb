"""The embedding example in examples/ works as documented."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLE = Path(__file__).parents[2] / "examples" / "embedded_cluster.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("embedded_cluster", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.e2e
async def test_three_embedded_agents_share_members_an_owner_and_a_key() -> None:
    result = await _load().main(3)
    assert result["alive"] == ["app-0", "app-1", "app-2"]
    assert result["owner_of_job_7"] in result["alive"]
    assert result["greeting"] == b"hello"
