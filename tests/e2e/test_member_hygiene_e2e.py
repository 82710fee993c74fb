"""Member hygiene on real agents on loopback: tags, filtered members, force-leave,
prune, and a restart that finds the cluster through its member snapshot alone.

Every process here is started by the test and stopped by PID (LocalCluster).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cluster_helpers import stop_at_once

from gossip.client.localcluster import QUICK_CONFIG, LocalCluster, find_free_base
from gossip.runtime import snapshot, tagfile

pytestmark = pytest.mark.e2e


def gossip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gossip", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=dict(os.environ),
    )


def listed(api: str, *filters: str) -> list[str]:
    result = gossip("members", "--json", "--api", api, *filters)
    assert result.returncode == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    return [m["name"] for m in answer["members"]]


def test_tags_filters_force_leave_prune_and_a_rejoin_from_the_snapshot(tmp_path: Path) -> None:
    with LocalCluster(
        3, tmp_path, config_text=QUICK_CONFIG, extra_args=["--tag", "role=web"]
    ) as cluster:
        cluster.start()
        cluster.wait_all_alive(30)
        one, two, three = cluster.agents
        api1, api3 = one.api().address, three.api().address

        # tags: a live change spreads, and is recorded in the data directory
        changed = gossip("tags", "--api", api3, "--set", "role=db", "--set", "tier=1")
        assert changed.returncode == 0, changed.stderr
        assert "role=db" in changed.stdout and "tier=1" in changed.stdout
        cluster.wait_until(
            lambda: one.members()[three.name]["tags"].get("role") == "db", 10, what="tags spread"
        )
        assert gossip("tags", "--api", api3, "--delete", "tier").returncode == 0
        assert (three.data_dir / tagfile.FILE_NAME).exists()
        refused = gossip("tags", "--api", api3, "--set", "big=" + "x" * 600)
        assert refused.returncode == 1 and "value longer than" in refused.stderr

        # members filters
        assert listed(api1, "--tag", "role=db") == [three.name]
        assert listed(api1, "--tag", "role=web|db", "--name", "node-[12]") == [one.name, two.name]
        assert listed(api1, "--status", "failed") == []
        bad = gossip("members", "--api", api1, "--name", "(")
        assert bad.returncode == 1 and "name: invalid regular expression" in bad.stderr

        # force-leave: a live member is refused; a failed one is marked left everywhere
        alive = gossip("force-leave", "--api", api1, three.name)
        assert alive.returncode == 1 and "only a failed member" in alive.stderr
        two.signal(signal.SIGKILL)
        two.wait(5)
        observers = [one.name, three.name]
        cluster.wait_until(lambda: cluster.all_see([two.name], "dead", observers), 30, what="dead")
        assert listed(api1, "--status", "failed") == [two.name]
        forced = gossip("force-leave", "--api", api1, two.name)
        assert forced.returncode == 0, forced.stderr
        cluster.wait_until(lambda: cluster.all_see([two.name], "left", observers), 10, what="left")
        pruned = gossip("force-leave", "--api", api1, two.name, "--prune")
        assert pruned.returncode == 0, pruned.stderr
        cluster.wait_until(
            lambda: all(two.name not in a.members() for a in (one, three)), 10, what="pruned"
        )

        # a restart whose only seed is dead finds the cluster through its snapshot
        assert three.stop(grace=10) == 0
        saved = snapshot.decode((three.data_dir / snapshot.FILE_NAME).read_bytes())
        assert [name for name, _ in saved] == [one.name]
        dead_seed = f"127.0.0.1:{find_free_base(1)}"
        three.args[three.args.index("--join") + 1] = dead_seed
        three.start()
        cluster.wait_until(
            lambda: cluster.all_see([one.name, three.name], "alive", observers),
            20,
            what="rejoined through the snapshot",
        )
        joined = [json.loads(line) for line in three.log_path.read_text().splitlines()
                  if '"agent_joined"' in line]  # fmt: skip
        assert joined[-1]["via"] == one.address  # not the dead seed: the snapshot's address
        tags = one.members()[three.name]["tags"]
        assert tags.get("role") == "db" and "tier" not in tags  # the recorded change won
        stop_at_once(cluster)
