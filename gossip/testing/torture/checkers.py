"""The six checks of a fault run, each a pure function of what the run recorded.

Rules: a checker returns a Verdict naming the keys, operations, items or members
that break it (the first MAX_SHOWN, and how many in all). Writes that failed or
timed out may or may not have taken effect (only a refused connection says
not), so they never count as lost and may explain a newer value or a purged
key; only acknowledged operations make promises, and a write whose acknowledging
replicas may all have had their disks wiped since promises nothing more.
Versions compare as the store orders them (wall, counter, node).
  lost_writes      every replica of a key holds its last acknowledged write, or newer
  resurrections    no replica, and no quorum read after the delete, shows a value
                   older than an acknowledged delete
  read_your_writes a client's quorum reads of its own keys return its last
                   acknowledged quorum write or newer, and never go back
  convergence      replica digests agree within the bound after healing
  ownership        no holder is refused by the fencing sink outside a fault (and
                   `owner_bound` after it), handlers of an item alternate
                   acquire/release on a node, one owner per item after healing
  membership       no member declared dead unless a fault touched it, its observer,
                   or its accuser (the node whose verdict the observer took: one cut
                   off past the suspicion timeout declares the others dead by SWIM's
                   rules, and its verdict, adopted as gossip wherever it arrives once
                   the cut heals, is the fault's doing, not the observer's)
  crashes          no agent dies of an exception (a fault is a reason to refuse work,
                   never to stop)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gossip.runtime.store.coordinator import needed_for
from gossip.testing.torture.clients import REFUSED, Op
from gossip.testing.torture.schedule import Step

MAX_SHOWN = 20
Version = tuple[int, int, str]
Final = Mapping[str, Mapping[str, tuple[Version, str | None] | None]]
"""key -> replica -> (version, value or None for a tombstone), None when absent."""
CHECKERS = (
    "lost_writes",
    "resurrections",
    "read_your_writes",
    "convergence",
    "ownership",
    "membership",
    "crashes",
)


@dataclass
class Verdict:
    name: str
    violations: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.total == 0

    def add(self, violation: dict[str, Any]) -> None:
        self.total += 1
        if len(self.violations) < MAX_SHOWN:
            self.violations.append(violation)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "total": self.total, "note": self.note, "shown": self.violations}


def _last_acked(ops: Sequence[Op]) -> dict[str, Op]:
    last: dict[str, Op] = {}
    for op in ops:
        if op.write and op.status == "ok" and op.version is not None:
            seen = last.get(op.key)
            if seen is None or (seen.version is not None and op.version > seen.version):
                last[op.key] = op
    return last


def maybe_applied(op: Op) -> bool:
    """Whether a write may have reached a replica (only a refused connection says no)."""
    return op.write and (op.status != "fail" or op.error != REFUSED)


def wiped_out(op: Op, steps: Sequence[Step]) -> bool:
    """Whether the disks of enough of the write's replicas were emptied after it began
    that every copy it was acknowledged with may be gone (a wipe is not a store bug)."""
    wiped = {s.target for s in steps if s.action == "wipe" and s.at >= op.invoked}
    return len(wiped & set(op.replicas)) >= max(1, needed_for(op.consistency, len(op.replicas)))


def _wiped_any(op: Op | None, steps: Sequence[Step]) -> bool:
    """Whether a replica of the write had its disk emptied after the write began."""
    return op is not None and any(
        s.action == "wipe" and s.at >= op.invoked and s.target in op.replicas for s in steps
    )


def lost_writes(ops: Sequence[Op], final: Final, steps: Sequence[Step] = ()) -> Verdict:
    v = Verdict("lost_writes")
    excused = 0
    for key, op in sorted(_last_acked(ops).items()):
        if op.kind != "put" or op.version is None:
            continue
        if wiped_out(op, steps):
            excused += 1
            continue
        # A delete begun after this write may have won and been purged since.
        purged = any(
            d.kind == "delete" and d.key == key and d.invoked >= op.invoked and maybe_applied(d)
            for d in ops
        )
        for replica, held in sorted(final.get(key, {}).items()):
            if (held is None and not purged) or (held is not None and held[0] < op.version):
                v.add(
                    {
                        "key": key,
                        "replica": replica,
                        "op": op.id,
                        "acked": list(op.version),
                        "held": None if held is None else [list(held[0]), held[1]],
                    }
                )
    v.note = f"{len(final)} keys checked on their replicas ({excused} writes wiped out)"
    return v


def resurrections(ops: Sequence[Op], final: Final, steps: Sequence[Step] = ()) -> Verdict:
    v = Verdict("resurrections")
    deletes: dict[str, Op] = {}
    for op in ops:
        # A delete is a write: one whose acknowledging replicas may all have had their
        # disks wiped since (its tombstone with them) promises nothing more.
        if op.kind == "delete" and op.status == "ok" and op.version is not None:
            if wiped_out(op, steps):
                continue
            seen = deletes.get(op.key)
            if seen is None or (seen.version is not None and op.version > seen.version):
                deletes[op.key] = op
    for key, d in sorted(deletes.items()):
        assert d.version is not None
        for replica, held in sorted(final.get(key, {}).items()):
            if held is not None and held[1] is not None and held[0] < d.version:
                v.add(
                    {"key": key, "replica": replica, "delete": d.id, "value": held[1]}
                    | {"deleted_at": list(d.version), "held": list(held[0])}
                )
    # Quorum reads that began after a quorum delete ended and saw an older write.
    puts = {op.value: op for op in ops if op.kind == "put" and op.value is not None}
    strong = ("quorum", "all")
    strong_deletes: dict[str, list[Op]] = defaultdict(list)
    for d in ops:
        if d.kind == "delete" and d.status == "ok" and d.consistency in strong:
            strong_deletes[d.key].append(d)
    for op in ops:
        if op.kind != "get" or op.status != "ok" or op.value is None:
            continue
        if op.consistency not in strong:
            continue
        w = puts.get(op.value)
        if w is None or w.version is None:
            continue
        for d in strong_deletes.get(op.key, ()):
            assert d.version is not None and d.ended is not None
            if d.ended < op.invoked and w.version < d.version:
                v.add({"key": op.key, "read": op.id, "value": op.value, "delete": d.id})
                break
    return v


def read_your_writes(
    ops: Sequence[Op], private: Mapping[int, Sequence[str]], steps: Sequence[Step] = ()
) -> Verdict:
    v = Verdict("read_your_writes")
    strong = ("quorum", "all")
    by_client_key: dict[tuple[int, str], list[Op]] = defaultdict(list)
    for op in ops:
        if op.key in private.get(op.client, ()):
            by_client_key[(op.client, op.key)].append(op)
    checked = 0
    for (client, key), mine in sorted(by_client_key.items()):
        puts = {op.value: op for op in mine if op.kind == "put"}
        by_id = {op.id: op for op in mine}
        acked: Op | None = None
        seen = -1
        seen_op: Op | None = None
        attempted: list[Op] = []
        for op in mine:
            if op.write:
                if maybe_applied(op):
                    attempted.append(op)
                if op.status == "ok" and op.consistency in strong:
                    acked = None if wiped_out(op, steps) else op
                continue
            if op.status != "ok" or op.consistency not in strong:
                continue
            checked += 1
            if op.value is None:
                dels = [w.id for w in attempted if w.kind == "delete"]
                position = max(dels) if dels else -1
            else:
                w = puts.get(op.value)
                position = w.id if w is not None else -1
            if acked is not None and position < acked.id:
                v.add(
                    {"client": client, "key": key, "read": op.id, "value": op.value}
                    | {"rule": "read_your_writes", "acked": acked.id, "acked_kind": acked.kind}
                )
            elif position < seen and not _wiped_any(by_id.get(seen), steps):
                v.add(
                    {"client": client, "key": key, "read": op.id, "value": op.value}
                    | {"rule": "monotonic", "earlier_read": seen_op.id if seen_op else None}
                )
            if position >= seen or _wiped_any(by_id.get(seen), steps):
                seen, seen_op = position, op
    v.note = f"{checked} quorum reads of private keys checked"
    return v


def convergence(result: Mapping[str, Any], bound: float) -> Verdict:
    v = Verdict("convergence")
    if not result.get("converged"):
        for diff in result.get("differing", []):
            v.add(diff)
        if v.total == 0:
            v.add({"reason": result.get("reason", "not converged")})
    v.note = f"converged after {result.get('after')} s (bound {bound} s)"
    return v


def _windows(
    steps: Sequence[Step], crashes: Sequence[Mapping[str, Any]], grace: float, restart: float
) -> list[tuple[float, float, set[str] | None]]:
    """(from, to, nodes touched or None for all) of each fault, `grace` after it ends.
    Clock steps excuse nothing: monotonic time never moves."""
    out: list[tuple[float, float, set[str] | None]] = []
    for s in steps:
        if s.action != "clock":
            out.append((s.at, s.ends + grace, set(s.nodes(())) or None))
    for c in crashes:
        out.append((c["t"], c["t"] + restart + grace, {c["node"]}))
    return out


def _excused(t: float, who: set[str], windows: list[tuple[float, float, set[str] | None]]) -> bool:
    return any(lo <= t <= hi and (nodes is None or who & nodes) for lo, hi, nodes in windows)


def ownership(
    owner_result: Mapping[str, Any],
    refusals: Sequence[Mapping[str, Any]],
    handler_runs: Sequence[Mapping[str, Any]],
    steps: Sequence[Step],
    crashes: Sequence[Mapping[str, Any]],
    bound: float,
    restart: float,
) -> Verdict:
    v = Verdict("ownership")
    # Two holders during a fault (and until `bound` after it) is what fencing is for;
    # a holder refused at any other time holds a token below one issued before.
    windows = _windows(steps, crashes, bound, restart)
    for r in refusals:
        if not _excused(r["t"], set(), [(lo, hi, None) for lo, hi, _ in windows]):
            v.add({"rule": "token_went_down"} | dict(r))
    last: dict[tuple[str, int, str], str] = {}
    for run in handler_runs:
        k = (run["node"], run["gen"], run["item"])
        expected = "released" if last.get(k) == "acquired" else "acquired"
        if run["event"] != expected:
            v.add({"rule": "handlers_alternate", "expected": expected} | dict(run))
        last[k] = run["event"]
    if not owner_result.get("settled"):
        for problem in owner_result.get("problems", []):
            v.add({"rule": "one_owner"} | dict(problem))
    v.note = f"one owner per item after {owner_result.get('after')} s (bound {bound} s)"
    return v


def membership(
    deaths: Sequence[Mapping[str, Any]],
    steps: Sequence[Step],
    crashes: Sequence[Mapping[str, Any]],
    grace: float,
    restart_delay: float,
) -> Verdict:
    v = Verdict("membership")
    windows = _windows(steps, crashes, grace, restart_delay)
    for d in deaths:
        who = {d["observer"], d["member"]} | ({d["accuser"]} if d.get("accuser") else set())
        if not _excused(d["t"], who, windows):
            v.add(dict(d))
    v.note = f"{len(deaths)} deaths declared"
    return v


def crashes(crashed: Sequence[Mapping[str, Any]]) -> Verdict:
    v = Verdict("crashes")
    for c in crashed:
        v.add(dict(c))
    v.note = f"{len(crashed)} agents died of an exception"
    return v
