"""Cluster checks over a Simulation: convergence, detection, false verdicts.

Rules: checks only read node state and listen to notifications; they never
change a run. `Verdicts` is a listener that records, per member, who declared
it suspect or dead and when; whether a verdict was false is judged against the
simulator's ground truth (`crashed`, filled in by whoever crashes hosts).
"""

from __future__ import annotations

from gossip.core.membership import outputs as out
from gossip.core.types import MemberState
from gossip.sim.engine import DOWN, Host, Simulation


def all_see_alive(sim: Simulation, expected: int | None = None) -> bool:
    """Every up host sees `expected` members alive (default: every live host)."""
    if expected is None:
        expected = len(sim.live_hosts())
    return all(
        h.node is not None and h.node.count(MemberState.ALIVE) == expected
        for h in sim.hosts
        if sim.running(h)
    )


def dead_everywhere(sim: Simulation, name: str) -> bool:
    """Every up host other than `name` holds `name` dead, left, or reaped."""
    for h in sim.hosts:
        if sim.running(h) and h.name != name and h.node is not None:
            info = h.node.member(name)
            if info is not None and info.state <= MemberState.SUSPECT:
                return False
    return True


def views_agree(sim: Simulation) -> bool:
    """Every up host holds the same (name -> state, incarnation) table."""
    views = [
        {m.name: (m.state, m.incarnation) for m in h.node.members()}
        for h in sim.hosts
        if sim.running(h) and h.node is not None
    ]
    return all(v == views[0] for v in views[1:])


class Verdicts:
    """Listens to every host and records suspicions and deaths against truth."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.crashed: dict[str, float] = {}
        """Ground truth: name -> time it was crashed (set by the scenario)."""
        self.first_dead: dict[str, dict[str, float]] = {}
        """member -> observer -> first time the observer declared it dead."""
        self.false_suspicions = 0
        self.false_deaths: set[str] = set()
        self.suspected: set[str] = set()
        sim.listen(self._on_output, (out.MemberSuspected, out.MemberFailed))

    def crash(self, name: str) -> None:
        """Crash the host named `name` now and remember it as ground truth."""
        self.crashed[name] = self.sim.now
        self.sim.crash(self.sim.by_name[name].idx)

    def _on_output(self, host: Host, o: out.Notification) -> None:
        if type(o) is out.MemberSuspected:
            name = o.member.name
            if name not in self.crashed:
                self.false_suspicions += 1
                self.suspected.add(name)
        elif type(o) is out.MemberFailed:
            name = o.member.name
            if name not in self.crashed:
                self.false_deaths.add(name)
            self.first_dead.setdefault(name, {}).setdefault(host.name, self.sim.now)

    def detection(self, name: str) -> tuple[float | None, float | None]:
        """(first, all): seconds from the crash of `name` until the first live
        host, and until every live host, declared it dead (None if not yet)."""
        crashed_at = self.crashed[name]
        seen = self.first_dead.get(name, {})
        times = [t for t in seen.values() if t >= crashed_at]
        first = min(times) - crashed_at if times else None
        live = [h.name for h in self.sim.hosts if h.status is not DOWN]
        if any(seen.get(obs, -1.0) < crashed_at for obs in live):
            return first, None
        last = max((seen[obs] for obs in live), default=crashed_at)
        return first, last - crashed_at
