"""The agent's memory floor: heavy libraries load only when something needs them.

A fresh interpreter imports everything an agent loads at start-up (the CLI, the
agent, every bundled plugin) and must not have imported cryptography (only with a
keyring), numpy (only for a weighted or bulk ownership table) or the `regex`
engine (only for a member filter with a pattern). Setting a keyring up and
parsing a filter then do import them, so the check is not vacuous."""

from __future__ import annotations

import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(
    """
    import sys
    import gossip.cli
    import gossip.runtime.agent
    import gossip.runtime.api
    import gossip.runtime.keys.service
    import gossip.runtime.ownership.service
    import gossip.runtime.store.service
    import gossip.security
    heavy = sorted({m.split(".")[0] for m in sys.modules} & {"cryptography", "numpy", "regex"})
    print(",".join(heavy))
    from gossip.security import AesGcmSealer  # the lazy name resolves
    print("cryptography" in sys.modules, AesGcmSealer.__name__)
    from gossip.runtime.memberfilter import parse_filter
    parse_filter({"name": "web-.*"})
    print("regex" in sys.modules)
    """
)


def test_start_up_imports_leave_out_cryptography_numpy_and_regex() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    assert out[0] == ""
    assert out[1] == "True AesGcmSealer"
    assert out[2] == "True"
