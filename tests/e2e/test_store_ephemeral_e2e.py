"""Ephemeral keys on three real agents: kill -9 of the writer removes its keys everywhere."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from gossip.client.kv import key_path, request
from gossip.client.localcluster import AgentProcess, LocalCluster

pytestmark = pytest.mark.e2e
GONE_WITHIN_S = 60.0  # far above detection (a few s with the local profile) plus one sync


def local(agent: AgentProcess, key: str) -> dict[str, object] | None:
    status, _, raw = request(agent.api(), "GET", key_path(key, local="1"))
    return json.loads(raw) if status == 200 else None


def gone(agent: AgentProcess, key: str) -> bool:
    record = local(agent, key)
    return record is None or bool(record["deleted"])


def test_the_ephemeral_keys_of_a_killed_writer_are_deleted_on_every_agent(tmp_path: Path) -> None:
    with LocalCluster(3, tmp_path, extra_args=["--kv-sync-interval", "0.5"]) as cluster:
        cluster.start()
        cluster.wait_all_alive(timeout=30)
        survivor, writer, other = cluster.agents
        status, _, _ = request(writer.api(), "PUT", key_path("svc/web", ephemeral="1"), b"up")
        assert status == 200
        assert request(writer.api(), "PUT", key_path("svc/db"), b"kept")[0] == 200
        # Ephemeral, but the latest write is another agent's: it is not the writer's to lose.
        assert request(writer.api(), "PUT", key_path("svc/lock", ephemeral="1"), b"w")[0] == 200
        assert request(other.api(), "PUT", key_path("svc/lock"), b"taken")[0] == 200
        assert not gone(survivor, "svc/web") or not gone(other, "svc/web")
        _, _, listing = request(survivor.api(), "GET", "/v1/kv?prefix=")
        assert [k["key"] for k in json.loads(listing)["keys"]] == ["svc/db", "svc/lock", "svc/web"]

        writer.signal(signal.SIGKILL)
        writer.wait(5)
        killed = time.monotonic()
        deadline = killed + GONE_WITHIN_S
        while not (gone(survivor, "svc/web") and gone(other, "svc/web")):
            assert time.monotonic() < deadline, "the ephemeral key outlived its writer"
            time.sleep(0.1)
        took = time.monotonic() - killed
        print(f"ephemeral key gone on every live agent {took:.2f} s after kill -9")
        for agent in (survivor, other):
            assert request(agent.api(), "GET", key_path("svc/db"))[2] == b"kept"
            status, _, value = request(agent.api(), "GET", key_path("svc/lock"))
            assert (status, value) == (200, b"taken")
