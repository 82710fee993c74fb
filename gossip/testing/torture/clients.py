"""Clients of a fault run: several at once, each one operation at a time.

Rules: a client picks an operation (put, get or delete), a key, a consistency
level and an agent, all from its own seeded rng, and calls that agent's store
library API (what the HTTP routes wrap). Keys are shared, or the client's own
(no other client writes them: read-your-writes is checked on those), or one-shot
(put once, later deleted once, never written again, so an undone delete cannot
hide behind a later write). Every operation is recorded from invoke to its end:
ok (with the version for writes, the value for reads), fail (with the reason), or
unknown (no answer within `client_timeout`, or the agent died under it). A
request to a node that is down fails at once (connection refused); one to a
paused node waits for it like a TCP client would. Written values are unique
("c<client>.<n>"), so a read names the write it saw. Each client keeps a session:
the greatest version of its acknowledged writes, passed with its next write
(`after`), as a careful HTTP client does; read-your-writes across agents whose
store clocks differ rests on it (docs/store.md, "Sessions")."""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from typing import Any

import trio

from gossip.core.store.hlc import Timestamp
from gossip.testing.torture.cluster import Cluster

LEVELS = ("one", "quorum", "all")
ONE_SHOT = 0.1
"""Share of operations on one-shot keys (each put once, later deleted once)."""
MAX_LIVE_ONE_SHOT = 20
REFUSED = "connection refused"
"""The error of a request to a node that is down: it never reached the store."""
LEVEL_WEIGHTS = (1, 3, 1)


@dataclass
class Op:
    id: int
    client: int
    kind: str
    """put | get | delete"""
    key: str
    consistency: str
    node: str
    invoked: float
    value: str | None = None
    """The value written (put) or read (get; None = absent)."""
    status: str = "invoked"
    """ok | fail | unknown"""
    ended: float | None = None
    version: tuple[int, int, str] | None = None
    error: str | None = None
    replicas: tuple[str, ...] = ()
    """The key's replicas in the coordinator's view when the operation began."""

    @property
    def write(self) -> bool:
        return self.kind in ("put", "delete")

    def invoke_line(self) -> dict[str, Any]:
        out = {"type": "invoke", "id": self.id, "client": self.client, "f": self.kind}
        out.update(key=self.key, cl=self.consistency, node=self.node, t=self.invoked)
        if self.replicas:
            out["replicas"] = list(self.replicas)
        if self.kind == "put":
            out["value"] = self.value
        return out

    def end_line(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.status, "id": self.id, "t": self.ended}
        if self.kind == "get" and self.status == "ok":
            out["value"] = self.value
        if self.version is not None:
            out["version"] = list(self.version)
        if self.error is not None:
            out["error"] = self.error
        return out


def history_lines(ops: list[Op]) -> list[str]:
    """The history as JSON lines, invokes and ends in time order (ties by id)."""
    events: list[tuple[float, int, int, dict[str, Any]]] = []
    for op in ops:
        events.append((op.invoked, 0, op.id, op.invoke_line()))
        if op.ended is not None:
            events.append((op.ended, 1, op.id, op.end_line()))
    events.sort(key=lambda e: e[:3])
    return [json.dumps(e[3], sort_keys=True) for e in events]


class Clients:
    def __init__(self, cluster: Cluster, seed: int) -> None:
        self.cluster = cluster
        self.seed = seed
        self.ops: list[Op] = []
        self.sessions: dict[int, Timestamp] = {}
        """Per client, the greatest version of its acknowledged writes."""
        c = cluster.config
        self.shared = [f"k{i}" for i in range(c.shared_keys)]
        self.one_shot: list[str] = []
        self.stopping = False

    def private_keys(self, client: int) -> list[str]:
        return [f"c{client}/k{i}" for i in range(self.cluster.config.private_keys)]

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            for i in range(self.cluster.config.clients):
                nursery.start_soon(self._client, i)

    async def _client(self, index: int) -> None:
        c = self.cluster.config
        rng = random.Random(f"client/{self.seed}/{index}")
        period = c.clients / c.rate if c.rate > 0 else float("inf")
        own = self.private_keys(index)
        names = list(self.cluster.nodes)
        written = 0
        live: list[str] = []  # this client's one-shot keys written and not yet deleted
        while not self.stopping:
            await trio.sleep(rng.expovariate(1 / period))
            if self.stopping:
                return
            key = rng.choice(own) if own and rng.random() < 0.4 else rng.choice(self.shared)
            kind = rng.choices(("put", "get", "delete"), (5, 4, 1))[0]
            if rng.random() < ONE_SHOT:
                # Written once, deleted once, never again: a delete that comes undone shows.
                if live and (len(live) >= MAX_LIVE_ONE_SHOT or rng.random() < 0.5):
                    kind, key = "delete", live.pop(rng.randrange(len(live)))
                else:
                    kind, key = "put", f"c{index}/once{written + 1}"
                    live.append(key)
                    self.one_shot.append(key)
            level = rng.choices(LEVELS, LEVEL_WEIGHTS)[0]
            op = Op(len(self.ops), index, kind, key, level, rng.choice(names), self.cluster.now())
            if kind == "put":
                written += 1
                op.value = f"c{index}.{written}"
            self.ops.append(op)
            await self._perform(op)

    async def _perform(self, op: Op) -> None:
        node = self.cluster.nodes[op.node]
        store, gen = node.store, node.gen
        if not node.running or store is None:
            self._end(op, "fail", error=REFUSED)
            return
        op.replicas = tuple(store.replicas_of_key(op.key))
        result: Any = None
        with trio.move_on_after(self.cluster.config.client_timeout):
            await self.cluster.net.gate(node.ip)
            try:
                after = self.sessions.get(op.client)
                if op.kind == "put":
                    assert op.value is not None
                    result = await store.put(op.key, op.value.encode(), op.consistency, after)
                elif op.kind == "delete":
                    result = await store.delete(op.key, op.consistency, after)
                else:
                    got = await store.get(op.key, op.consistency)
                    op.value = None if got is None else got.decode()
                    result = True
            except Exception as exc:
                result = exc
        if node.gen != gen or not node.running:
            self._end(op, "unknown", error="connection reset (the agent died)")
        elif result is None:
            self._end(op, "unknown", error="timeout")
        elif isinstance(result, Exception):
            self._end(op, "fail", error=f"{type(result).__name__}: {result}")
        else:
            if op.write:
                v = result.version
                op.version = (v.wall, v.counter, v.node)
                seen = self.sessions.get(op.client)
                self.sessions[op.client] = v if seen is None else max(seen, v)
            self._end(op, "ok")

    def _end(self, op: Op, status: str, error: str | None = None) -> None:
        op.status = status
        op.error = error
        op.ended = self.cluster.now()
        if status != "ok" and op.kind == "get":
            op.value = None


def op_json(op: Op) -> dict[str, Any]:
    return asdict(op)
