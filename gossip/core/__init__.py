"""The pure protocol core: no I/O, no clocks, no module-level randomness.

Every input takes `now` (seconds, float); the only randomness is an injected
`random.Random`. A test (tests/unit/test_core_purity.py) keeps trio, socket,
time and asyncio out of this package.
"""
