"""Synthetic JSON-lines logs that follow the event contract, for log-tool tests."""

from __future__ import annotations

import json
from pathlib import Path

from gossip.logs.records import format_timestamp

T0 = 1_800_000_000.0  # an arbitrary fixed epoch
NODES = ("n1", "n2", "n3", "n4", "n5")


def line(t: float, event: str, node: str | None = None, **fields: object) -> str:
    obj: dict[str, object] = {
        "timestamp": format_timestamp(T0 + t),
        "level": "info",
        "event": event,
    }
    if node is not None:
        obj["node"] = node
    obj.update(fields)
    return json.dumps(obj)


def member(
    t: float, event: str, node: str, subject: str, state: str, inc: int = 0, **kw: object
) -> str:
    return line(
        t, event, node, member=subject, address="10.0.0.1:7946", incarnation=inc, state=state, **kw
    )


def write_cluster(folder: Path) -> dict[str, float]:
    """Five agents: n1 falsely suspects n2 at 2.0 (refuted), n3 is killed at
    10.0 and n4 paused from 20.0 to 26.0. Returns the fault times."""
    logs: dict[str, list[str]] = {n: [] for n in NODES}
    for n in NODES:
        logs[n].append(line(0.0, "agent_started", n, address="10.0.0.1:7946"))
        for other in NODES:
            if other != n:
                logs[n].append(member(0.5, "member_joined", n, other, "alive"))
    logs["n1"].append(member(2.0, "member_suspected", "n1", "n2", "suspect", accuser="n1"))
    logs["n1"].append(member(2.4, "member_refuted", "n1", "n2", "alive", inc=1))
    logs["n2"].append(
        line(2.3, "self_refuted", "n2", accused_state="suspect", accuser="n1", incarnation=1)
    )
    # kill n3 at 10: observers suspect at 10.6, 10.9, 11.4, 11.8; fail 3 s later
    for n, lag in zip(("n1", "n2", "n4", "n5"), (0.6, 0.9, 1.4, 1.8), strict=True):
        logs[n].append(member(10 + lag, "member_suspected", n, "n3", "suspect", accuser=n))
        logs[n].append(
            member(13 + lag, "member_failed", n, "n3", "dead", accuser=n, confirmations=1)
        )
    logs["n3"].append(line(9.9, "probe_timed_out", "n3", member="n1", indirect_helpers=3, health=0))
    # pause n4 at 20 for 6 s: others suspect, two fail it, then it refutes
    for n, lag in zip(("n1", "n2", "n5"), (0.7, 1.0, 1.2), strict=True):
        logs[n].append(member(20 + lag, "member_suspected", n, "n4", "suspect", accuser=n))
    for n, lag in zip(("n1", "n2"), (4.5, 5.0), strict=True):
        logs[n].append(member(20 + lag, "member_failed", n, "n4", "dead", accuser=n))
    logs["n4"].append(
        line(26.1, "self_refuted", "n4", accused_state="dead", accuser="n1", incarnation=2)
    )
    for n, lag in zip(("n1", "n2", "n5"), (0.3, 0.4, 0.5), strict=True):
        event = "member_joined" if n != "n5" else "member_refuted"
        logs[n].append(member(26 + lag, event, n, "n4", "alive", inc=2))
    logs["n1"].append(line(27.0, "ownership_changed", "n1", gained=3, lost=0))
    logs["n2"].append(line(28.0, "kv_repaired", "n2", partition=5, keys=2))
    logs["n5"].append(line(30.0, "agent_stopped", "n5"))
    for n, entries in logs.items():
        entries.sort(key=lambda s: json.loads(s)["timestamp"])
        (folder / f"{n}.log").write_text("\n".join(entries) + "\n")
    scenario = [
        line(0.0, "scenario_started", name="synthetic", agents=5),
        line(1.0, "fault_injected", action="loss", target="*", percent=10),
        line(10.0, "fault_injected", action="kill", target="n3", pid=123),
        line(20.0, "fault_injected", action="pause", target="n4", pid=124),
        line(26.0, "fault_cleared", action="resume", target="n4", pid=124),
        line(30.0, "scenario_finished"),
    ]
    (folder / "scenario.log").write_text("\n".join(scenario) + "\n")
    return {"kill": 10.0, "pause": 20.0, "resume": 26.0}
