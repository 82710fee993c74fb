"""Store: Merkle anti-entropy cost beside shipping the full list; puts/gets per second.

Rules: both methods run in the same process on the same pair of replicas for
each difference count D, so the figures compare side by side. Bytes are the
encoded messages both ways; "metadata" is those bytes minus the encoded
records that had to move anyway. Round trips are request/response pairs.
The differences are a mix: a third newer on B, a third only on A, a third
deleted on B. Replicas are in memory (the protocol, not sqlite, is measured).
`--part ops` (gossip.bench._store_ops) times puts and gets on real agents.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass

import cbor2

from gossip.core.store.antientropy import SyncSession, reply_to
from gossip.core.store.hlc import Timestamp
from gossip.core.store.memory_replica import MemoryReplica
from gossip.core.store.record import Record, record_to_wire
from gossip.core.store.syncwire import SyncMessage, decode, encode

PARTITION = 0


@dataclass
class Result:
    method: str
    diffs: int
    bytes_total: int
    record_bytes: int
    round_trips: int
    seconds: float
    equal: bool

    @property
    def per_diff(self) -> float:
        return (self.bytes_total - self.record_bytes) / self.diffs if self.diffs else 0.0


def build(n: int) -> MemoryReplica:
    rep = MemoryReplica()
    node_ts = [Timestamp(1_700_000_000_000 + i, 0, "a") for i in range(n)]
    rep.load(Record(f"key-{i:08d}", b"v-%08d" % i, node_ts[i]) for i in range(n))
    return rep


def diverge(base: MemoryReplica, n: int, d: int) -> tuple[MemoryReplica, MemoryReplica]:
    a, b = base.clone(), base.clone()
    stride = max(1, n // max(d, 1))
    later = 1_800_000_000_000
    for j in range(d):
        key = f"key-{(j * stride) % n:08d}"
        kind = j % 3
        if kind == 0:
            b.put(Record(key, b"newer on b", Timestamp(later + j, 0, "b")))
        elif kind == 1:
            a.put(Record(f"only-a-{j}", b"new on a", Timestamp(later + j, 0, "a")))
        else:
            b.put(Record(key, None, Timestamp(later + j, 0, "b")))
    return a, b


def record_bytes(payload: bytes) -> int:
    return sum(len(cbor2.dumps(record_to_wire(r))) for r in decode(payload).records)


def run_merkle(a: MemoryReplica, b: MemoryReplica, d: int) -> Result:
    t0 = time.perf_counter()
    session = SyncSession(a, PARTITION)
    request: bytes | None = session.start()
    moved = 0
    while request is not None:
        moved += record_bytes(request)
        reply, _ = reply_to(b, decode(request))
        payload = encode(reply)
        moved += record_bytes(payload)
        request = session.receive(payload)
    s = session.stats
    seconds = time.perf_counter() - t0
    return Result(
        "merkle",
        d,
        s.bytes_sent + s.bytes_received,
        moved,
        s.round_trips,
        seconds,
        a.tree.root == b.tree.root,
    )


def run_full_list(a: MemoryReplica, b: MemoryReplica, d: int) -> Result:
    """Baseline: A ships every (key hash, version, tag); B answers with what
    differs; A sends what B asked for."""
    t0 = time.perf_counter()
    everything = a.entries(0, (1 << 64) - 1)
    msg = SyncMessage(PARTITION, entries=[(0, 0, everything)])
    total = moved = trips = 0
    sides = (b, a)
    while not msg.is_empty():
        payload = encode(msg)
        total += len(payload)
        moved += record_bytes(payload)
        receiver = sides[trips % 2]
        msg, _ = reply_to(receiver, decode(payload), max_bytes=1 << 40)
        trips += 1
    seconds = time.perf_counter() - t0
    return Result(
        "full-list", d, total, moved, (trips + 1) // 2, seconds, a.tree.root == b.tree.root
    )


def print_row(r: Result) -> None:
    print(
        f"{r.method:>9} D={r.diffs:<6} bytes={r.bytes_total:>11,} records={r.record_bytes:>9,}"
        f" metadata/diff={r.per_diff:>9,.0f} round_trips={r.round_trips:<3}"
        f" wall={r.seconds:8.3f}s equal={r.equal}"
    )


def bench_sync(n: int, diffs: Sequence[int]) -> list[Result]:
    t0 = time.perf_counter()
    base = build(n)
    print(f"built {n:,} keys in {time.perf_counter() - t0:.1f}s")
    results: list[Result] = []
    for d in diffs:
        for runner in (run_merkle, run_full_list):
            a, b = diverge(base, n, d)
            r = runner(a, b, d)
            results.append(r)
            print_row(r)
        m, f = results[-2], results[-1]
        print(
            f"          D={d:<6} merkle/full-list: bytes {m.bytes_total / f.bytes_total:.5f},"
            f" wall {m.seconds / f.seconds:.3f}"
        )
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys per replica")
    parser.add_argument(
        "--diffs", default="0,10,1000,10000", help="comma-separated difference counts"
    )
    parser.add_argument(
        "--part", choices=("all", "sync", "ops"), default="all", help="what to measure (all)"
    )
    parser.add_argument("--ops", type=int, default=2000, help="puts and gets per set-up")
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")


def run(args: argparse.Namespace) -> int:
    ok = True
    if args.part in ("all", "sync"):
        diffs = [int(x) for x in str(args.diffs).split(",") if x.strip()]
        ok = all(r.equal for r in bench_sync(args.keys, diffs))
    if args.part in ("all", "ops"):
        from gossip.bench._store_ops import bench_ops

        bench_ops(args.ops, args.clients)
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gossip bench store", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
