"""Query load in a simulation: the fan-out of questions and their answers.

Rules: from `start` until `stop` the load starts `rate` queries per simulated
second cluster-wide (Poisson arrivals), each from a random up host, to every
member (no filter), with acks, a `timeout` deadline and `relay` relays per
reply; every host that receives one answers at once. Drawn from the load's own seeded rng, so a run
replays. The figures: for each query, the share of hosts up at its start
whose ack and whose answer reached the asker before the deadline, and the
time to the last answer.
"""

from __future__ import annotations

import random
from typing import Any

from gossip.core.membership import outputs as out
from gossip.sim.arrivals import Arrivals
from gossip.sim.engine import Host, Simulation

TIMEOUT_S = 5.0


class QueryLoad:
    def __init__(self, sim: Simulation, rate: float, seed: int, relay: int = 0) -> None:
        self.sim = sim
        self.rate = rate
        self.relay = relay
        self.rng = random.Random(f"queries-{seed}")
        self.asked: dict[tuple[str, int], tuple[float, set[str]]] = {}
        """(asker, qid) -> (time asked, hosts up then)."""
        self.acks: dict[tuple[str, int], set[str]] = {}
        self.answers: dict[tuple[str, int], dict[str, float]] = {}
        self._arrivals = Arrivals(sim, rate, self.rng, self._ask)
        sim.listen(self._on_output, (out.QueryReceived, out.QueryAnswered))

    def start(self, at: float, stop: float) -> None:
        self._arrivals.start(at, stop)

    def _ask(self, host: Host, up: list[Host]) -> None:
        qid = self.sim.act(
            host.idx,
            lambda node, now: node.query(now, "q", b"", timeout=TIMEOUT_S, relay=self.relay),
        )
        self.asked[(host.name, qid)] = (self.sim.now, {h.name for h in up})

    def _on_output(self, host: Host, o: out.Notification) -> None:
        if isinstance(o, out.QueryReceived):
            # Answered after the shell's next turn, as an agent would.
            self.sim.call_at(self.sim.now, lambda: self._respond(host, o))
        elif isinstance(o, out.QueryAnswered):
            key = (host.name, o.qid)
            if o.ack:
                self.acks.setdefault(key, set()).add(o.responder)
            else:
                self.answers.setdefault(key, {})[o.responder] = self.sim.now

    def _respond(self, host: Host, q: out.QueryReceived) -> None:
        if self.sim.running(host) and host.node is not None:
            self.sim.act(host.idx, lambda node, now: node.respond(now, q.qid, q.address, b"ok"))

    def figures(self) -> dict[str, Any]:
        ack_shares, answer_shares, lasts = [], [], []
        for key, (at, up) in self.asked.items():
            acked = self.acks.get(key, set()) & up
            answered = self.answers.get(key, {})
            ack_shares.append(len(acked) / len(up))
            answer_shares.append(len(set(answered) & up) / len(up))
            if answered:
                lasts.append(max(answered.values()) - at)
        lasts.sort()
        return {
            "queries": len(self.asked),
            "query_ack_share_min": round(min(ack_shares), 4) if ack_shares else None,
            "query_answer_share_min": round(min(answer_shares), 4) if answer_shares else None,
            "query_answer_share_mean": (
                round(sum(answer_shares) / len(answer_shares), 4) if answer_shares else None
            ),
            "query_last_answer_p50_s": round(lasts[len(lasts) // 2], 3) if lasts else None,
            "query_last_answer_max_s": round(lasts[-1], 3) if lasts else None,
        }
