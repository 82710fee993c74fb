"""The store benchmark runs end to end on a small replica and reports sane figures."""

from gossip.bench.store import bench_sync


def test_the_benchmark_compares_both_methods_and_both_converge() -> None:
    results = bench_sync(3000, [0, 30])
    assert [(r.method, r.diffs) for r in results] == [
        ("merkle", 0),
        ("full-list", 0),
        ("merkle", 30),
        ("full-list", 30),
    ]
    assert all(r.equal for r in results)
    in_sync = results[0]
    assert in_sync.round_trips == 1 and in_sync.bytes_total <= 256
    merkle, full = results[2], results[3]
    assert merkle.bytes_total < full.bytes_total
    assert merkle.per_diff <= 1500
