"""The agent's memory floor: heavy libraries load only when something needs them.

A fresh interpreter imports everything an agent loads at start-up (the CLI, the
agent, every bundled plugin) and must not have imported cryptography (only with a
keyring), numpy (only for a weighted or bulk ownership table), the `regex`
engine (only for a member filter with a pattern) or statistics with its decimal
and fractions (never: a coordinate filter takes its median by hand). Setting a keyring up and
parsing a filter then do import them, so the check is not vacuous."""

from __future__ import annotations

import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(
    """
    import sys
    import gossip.cli
    import gossip.cli.agent_cmd
    import gossip.runtime.agent
    import gossip.runtime.api
    import gossip.runtime.keys.service
    import gossip.runtime.ownership.service
    import gossip.runtime.store.service
    import gossip.security
    unused = {"cryptography", "numpy", "regex", "statistics", "decimal", "fractions"}
    heavy = sorted({m.split(".")[0] for m in sys.modules} & unused)
    print(",".join(heavy))
    from gossip.security import AesGcmSealer  # the lazy name resolves
    print("cryptography" in sys.modules, AesGcmSealer.__name__)
    from gossip.runtime.memberfilter import parse_filter
    parse_filter({"name": "web-.*"})
    print("regex" in sys.modules)
    """
)


def test_start_up_imports_leave_out_what_an_idle_agent_does_not_use() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    assert out[0] == ""
    assert out[1] == "True AesGcmSealer"
    assert out[2] == "True"
