"""Entry point for the store benchmark: `python tools/bench_store.py --keys 1000000`."""

import sys

from gossip.bench.store import main

if __name__ == "__main__":
    sys.exit(main())
