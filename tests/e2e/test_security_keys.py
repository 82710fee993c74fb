"""Encrypted clusters of real agents on loopback: isolation, rotation, rejoin.

Each test starts agent processes (LocalCluster, local profile) and drives key
commands through the `gossip keys` command line, as an operator would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cluster_helpers import stop_at_once

from gossip.client.api import ApiClientError
from gossip.client.localcluster import AgentProcess, LocalCluster
from gossip.security.keyfile import keyring_path, load_keyring
from gossip.security.keyring import decode_key, encode_key, generate_key, key_label

pytestmark = pytest.mark.e2e


def gossip_keys(agent: AgentProcess, *args: str) -> tuple[int, dict[str, object]]:
    """Run `gossip keys ARGS --json` against `agent`; (exit code, summary)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gossip",
            "keys",
            *args,
            "--json",
            "--api",
            f"127.0.0.1:{agent.api_port}",
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.stdout, done.stderr.decode()
    return done.returncode, json.loads(done.stdout)


def events(agent: AgentProcess, name: str) -> list[dict[str, object]]:
    found = []
    for line in agent.log_path.read_text().splitlines():
        if f'"{name}"' in line:
            record = json.loads(line)
            if record.get("event") == name:
                found.append(record)
    return found


def rejected(agent: AgentProcess) -> dict[str, float]:
    """Datagrams and streams refused by `agent`, summed by reason."""
    out: dict[str, float] = {}
    try:
        text = agent.api().call("GET", "/v1/metrics", timeout=2.0)
    except ApiClientError:
        return out  # not up yet
    for line in str(text).splitlines():
        if line.startswith(("gossip_datagrams_rejected_total{", "gossip_streams_rejected_total{")):
            labels, value = line.rsplit(" ", 1)
            reason = labels.split('reason="', 1)[1].split('"', 1)[0]
            out[reason] = out.get(reason, 0.0) + float(value)
    return out


def test_agents_with_another_key_cluster_name_or_no_key_never_join(tmp_path: Path) -> None:
    key, other = encode_key(generate_key()), encode_key(generate_key())
    cluster = LocalCluster(4, tmp_path, extra_args=["--encrypt-key", key])
    wrong_key, wrong_cluster, plaintext = cluster.agents[1:]
    wrong_key.args += ["--encrypt-key", other]
    wrong_cluster.args += ["--cluster-name", "elsewhere"]
    plaintext.args = [a for a in plaintext.args if a not in ("--encrypt-key", key)]
    with cluster:
        cluster.start()
        seed = cluster.agents[0]
        cluster.wait_until(
            lambda: {"unknown_key", "decrypt_failed", "not_encrypted"} <= rejected(seed).keys(),
            20,
            what="every kind of stranger refused by the seed",
        )
        time.sleep(2.0)  # several more probe and join rounds
        for agent in cluster.agents:
            assert list(agent.members()) == [agent.name], f"{agent.name} let someone in"
        stop_at_once(cluster)


def test_full_rotation_on_a_running_cluster_causes_no_failures(tmp_path: Path) -> None:
    k1, k2 = generate_key(), generate_key()
    with LocalCluster(5, tmp_path, extra_args=["--encrypt-key", encode_key(k1)]) as cluster:
        cluster.start()
        cluster.wait_all_alive(30)
        entry = cluster.agents[2]
        for op, key in (("install", k2), ("use", k2), ("remove", k1)):
            code, summary = gossip_keys(entry, op, encode_key(key))
            assert code == 0 and summary["failed"] == [], (op, summary)
            assert summary["total"] == 5
        code, summary = gossip_keys(cluster.agents[0], "list")
        assert code == 0
        assert summary["keys"] == {key_label(k2): {"installed": 5, "primary": 5}}
        time.sleep(1.0)  # traffic now flows on the new key only
        names = [a.name for a in cluster.agents]
        cluster.wait_until(lambda: cluster.all_see(names, "alive", names), 10, what="all alive")
        for agent in cluster.agents:
            assert events(agent, "member_failed") == [], agent.name
            stored = load_keyring(keyring_path(agent.data_dir))
            assert stored is not None and stored.all_keys() == [k2]
        stop_at_once(cluster)


def test_an_agent_that_missed_a_rotation_rejoins_while_its_key_remains(tmp_path: Path) -> None:
    k1, k2 = generate_key(), generate_key()
    with LocalCluster(4, tmp_path, extra_args=["--encrypt-key", encode_key(k1)]) as cluster:
        cluster.start()
        cluster.wait_all_alive(30)
        absent = cluster.agents[3]
        absent.stop()
        entry = cluster.agents[0]
        for op in ("install", "use"):
            _, summary = gossip_keys(entry, op, encode_key(k2))
            nodes = summary["nodes"]
            assert isinstance(nodes, dict)
            assert all(nodes[a.name]["ok"] for a in cluster.agents[:3]), summary
        absent.start()  # its keyring file still holds k1 only
        names = [a.name for a in cluster.agents]
        cluster.wait_until(
            lambda: cluster.all_see(names, "alive", names), 20, what="the absent agent rejoined"
        )
        # The operator sees who lags behind, and brings it up to date. (Each node
        # answers the laggard with the old key once it has heard from it directly,
        # within a probe round of its return; until then a request may go unanswered.)
        listed: list[dict[str, object]] = []

        def everyone_answers() -> bool:
            code, summary = gossip_keys(entry, "list")
            listed.append(summary)
            return code == 0

        cluster.wait_until(everyone_answers, 15, what="every node answers `keys list`")
        summary = listed[-1]
        assert summary["keys"] == {
            key_label(k1): {"installed": 4, "primary": 1},
            key_label(k2): {"installed": 3, "primary": 3},
        }, summary["nodes"]
        for op, key in (("install", k2), ("use", k2), ("remove", k1)):
            code, summary = gossip_keys(entry, op, encode_key(key))
            assert code == 0, summary
        cluster.wait_until(lambda: cluster.all_see(names, "alive", names), 10, what="all alive")
        stored = load_keyring(keyring_path(absent.data_dir))
        assert stored is not None and stored.all_keys() == [decode_key(encode_key(k2))]
        stop_at_once(cluster)


def test_a_cluster_midway_through_an_encryption_rollout_works(tmp_path: Path) -> None:
    key = encode_key(generate_key())
    lenient = ["--encrypt-key", key, "--no-require-encrypted"]
    with LocalCluster(3, tmp_path, extra_args=lenient) as cluster:
        behind = cluster.agents[0]  # still at step 1: sends plaintext
        behind.args.append("--no-encrypt-outgoing")
        cluster.start()
        cluster.wait_all_alive(30)  # step-1 and step-2 agents understand each other
        for agent in cluster.agents:
            assert rejected(agent) == {}, agent.name
        # key commands need a sealed request: from a step-2 agent they reach everyone
        # (the step-1 agent's plaintext answer is accepted), from the step-1 agent
        # the others refuse them
        code, summary = gossip_keys(cluster.agents[1], "list")
        assert code == 0, summary
        code, summary = gossip_keys(behind, "list")
        assert code == 1
        nodes = summary["nodes"]
        assert isinstance(nodes, dict)
        assert {n for n, a in nodes.items() if not a["ok"]} == {"node-2", "node-3"}
        assert nodes["node-2"]["error"] == "key commands must be encrypted"
        stop_at_once(cluster)
