"""A rolling upgrade of five real agents from wire version 1 to version 2.

Each agent in turn leaves gracefully and comes back speaking [1, 2]; the
cluster must keep speaking 1 while any old member is alive, switch to 2 once
all are upgraded, and nobody may declare anybody failed on the way.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cluster_helpers import logged, stop_at_once

from gossip.client.api import ApiClientError
from gossip.client.localcluster import QUICK_CONFIG, AgentProcess, LocalCluster

pytestmark = pytest.mark.e2e


def _version(agent: AgentProcess) -> int:
    try:
        return int(agent.api().call("GET", "/v1/self", timeout=2.0)["protocol_version"])
    except ApiClientError:
        return -1


def test_five_agents_upgrade_one_by_one_without_a_failure(tmp_path: Path) -> None:
    upgraded = tmp_path / "upgraded.toml"
    upgraded.write_text(QUICK_CONFIG + "protocol_max = 2\n")
    with LocalCluster(5, tmp_path, config_text=QUICK_CONFIG) as cluster:
        cluster.start()
        cluster.wait_all_alive(30)
        names = [a.name for a in cluster.agents]
        assert [_version(a) for a in cluster.agents] == [1] * 5
        for i, agent in enumerate(cluster.agents):
            assert agent.stop(grace=10) == 0  # a graceful leave
            config_at = agent.args.index("--config") + 1
            agent.args[config_at] = str(upgraded)
            if "--join" not in agent.args:  # the first agent joins through the second
                agent.args += ["--join", cluster.agents[1].address]
            agent.start()
            cluster.wait_until(
                lambda: cluster.all_see(names, "alive", names), 30, what=f"{agent.name} back"
            )
            if i < 4:  # an old member remains: the cluster speaks down to it
                assert _version(agent) == 1
        cluster.wait_until(
            lambda: all(_version(a) == 2 for a in cluster.agents), 15, what="version 2"
        )
        for agent in cluster.agents:
            assert agent.starts == 2
            assert len(logged(agent.log_path, "member_left")) >= 4 - (agent is cluster.agents[4])
            assert not logged(agent.log_path, "member_failed"), agent.name
            assert not logged(agent.log_path, "protocol_refused"), agent.name
            seen = agent.members()
            assert all(seen[n]["tags"].get("pv") == "1-2" for n in names)
        stop_at_once(cluster)


def test_an_agent_with_no_version_in_common_is_refused_and_both_sides_log_why(
    tmp_path: Path,
) -> None:
    newer_only = tmp_path / "newer-only.toml"
    newer_only.write_text(QUICK_CONFIG + "protocol_min = 2\nprotocol_max = 2\n")
    with LocalCluster(3, tmp_path, config_text=QUICK_CONFIG) as cluster:
        old, _, newer = cluster.agents
        newer.args[newer.args.index("--config") + 1] = str(newer_only)
        cluster.start()
        cluster.wait_until(
            lambda: (
                logged(old.log_path, "protocol_refused")
                and logged(newer.log_path, "protocol_refused")
            ),
            20,
            what="refusals logged",
        )
        refused_by_old = logged(old.log_path, "protocol_refused")[0]
        refused_by_newer = logged(newer.log_path, "protocol_refused")[0]
        assert (refused_by_old["their_versions"], refused_by_old["our_versions"]) == ("2-2", "1-1")
        assert (refused_by_newer["their_versions"], refused_by_newer["our_versions"]) == (
            "1-1",
            "2-2",
        )
        assert newer.name not in old.members()
        stop_at_once(cluster)
