"""`gossip bench ownership` runs small and prints its side-by-side figures."""

from __future__ import annotations

import pytest

from gossip.cli import main


def test_bench_ownership_prints_every_row_for_all_three_methods(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["bench", "ownership", "--members", "8", "--keys", "20000", "--partitions", "4096"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "partition table" in line and "ring" in line)
    assert header.split() == ["partition", "table", "hash", "ring", "direct", "HRW"]
    rows = {line[:33].strip(): line[33:].split() for line in out.splitlines() if line[:1] != " "}
    # Rendezvous moves only the leaver's keys, in the table as per key.
    table_moved, _ring_moved, direct_moved = rows["keys moved / minimum on a leave"]
    assert table_moved == direct_moved == "1.000"
    assert all(float(x.replace(",", "")) > 0 for x in rows["lookups per second"])
    assert all(1.0 <= float(x) < 2.0 for x in rows["max/mean load"])


def test_bench_rejects_a_partition_count_that_is_not_a_power_of_two(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["bench", "ownership", "--partitions", "1000"]) == 2
    assert "power of two" in capsys.readouterr().out


def test_bench_lists_benchmark_modules_without_a_registry(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    assert "ownership" in capsys.readouterr().out
