"""Benchmarks run by `gossip bench NAME`.

Rules: each module here is one benchmark, found by name (no registry to edit). It defines
`add_arguments(parser)` and `run(args) -> int`, and its docstring's first line is the help.
Benchmarks print their figures side by side from one run, and bound their own size and time.
"""
