#!/usr/bin/env python3
"""Coverage-guided fuzzing (atheris/libFuzzer) of every decoder that reads
untrusted bytes: the AES-GCM sealer, the stream/datagram framing, the wire
decoder and the node's datagram and stream entry points.

Rules: the first input byte picks the target; each target may only fail with
its documented typed error, anything else is a crash that libFuzzer reports
with the input that caused it. The run is bounded in time; at the end libFuzzer
prints "Done N runs in S second(s)" (the iteration count).

    python3 tools/fuzz/fuzz_decoders.py -max_total_time=50
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[2]))

with atheris.instrument_imports(include=["gossip"]):
    import fuzz_targets as targets

TARGETS: list[tuple[str, Callable[[bytes], None]]] = targets.all_targets()


def test_one_input(data: bytes) -> None:
    if not data:
        return
    _, target = TARGETS[data[0] % len(TARGETS)]
    target(data[1:])


def write_seeds(folder: Path) -> None:
    for index, (_, _target) in enumerate(TARGETS):
        for n, seed in enumerate(targets.seeds_for(index)):
            (folder / f"seed-{index}-{n}").write_bytes(bytes([index]) + seed)


def main() -> None:
    args = list(sys.argv)
    if not any(not a.startswith("-") for a in args[1:]):
        corpus = Path(tempfile.mkdtemp(prefix="gossip-fuzz-"))
        write_seeds(corpus)
        args.append(str(corpus))
        if not any(a.startswith("-artifact_prefix=") for a in args):
            args.insert(1, f"-artifact_prefix={corpus}/")  # crash files, not in the work tree
    print("fuzz targets:", ", ".join(name for name, _ in TARGETS), flush=True)
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
