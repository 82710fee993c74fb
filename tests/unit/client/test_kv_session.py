"""A store client session passes the greatest version its writes were given as `after`."""

from __future__ import annotations

import json
from typing import cast

import pytest

from gossip.client.api import ApiClient, ApiClientError
from gossip.client.kvsession import KvSession, version_order


class Agents:
    """Stands in for agents whose store clocks differ: answers each write with the next
    version from `versions`, and records the paths asked."""

    def __init__(self, versions: list[str]) -> None:
        self.versions = versions
        self.paths: list[tuple[str, str]] = []

    def exchange(
        self, method: str, path: str, body: bytes | None = None, timeout: float = 0.0
    ) -> tuple[int, str, bytes]:
        self.paths.append((method, path))
        if "after=bad" in path:
            return 400, "application/json", b'{"error": "after is not a version"}'
        answer = {"key": "k", "version": self.versions.pop(0)}
        return 200, "application/json", json.dumps(answer).encode()


def test_each_write_names_the_greatest_version_seen_so_far() -> None:
    agents = Agents(["1000.3@fast", "966.0@slow", "1000.4@slow"])
    session = KvSession(cast(ApiClient, agents))
    assert session.delete("k", "one") == "1000.3@fast"
    session.put("k", b"v")  # a slower clock's version does not lower what is sent
    session.put("k", b"w", "all")
    assert agents.paths == [
        ("DELETE", "/v1/kv/k?consistency=one"),
        ("PUT", "/v1/kv/k?consistency=quorum&after=1000.3%40fast"),
        ("PUT", "/v1/kv/k?consistency=all&after=1000.3%40fast"),
    ]
    assert session.after == "1000.4@slow"


def test_a_session_can_start_from_a_version_and_reports_refusals() -> None:
    agents = Agents([])
    session = KvSession(cast(ApiClient, agents), after="5.1@x")
    assert session.after == "5.1@x"
    session.after = "bad"
    with pytest.raises(ApiClientError, match="400"):
        session.put("k", b"v")


def test_versions_order_by_wall_time_then_counter() -> None:
    assert version_order("1000.3@n1") == (1000, 3)
    assert version_order("1000.3") == (1000, 3)
    assert version_order("1000.3@n1") < (version_order("1000.10@a") or (0, 0))
    for garbage in ("", "1000", "x.1", "1.y", "-1.0", "1." + "9" * 400):
        assert version_order(garbage) is None
