"""The agent's memory floor: heavy libraries load only when something needs them.

A fresh interpreter imports everything an agent loads at start-up (the CLI, the
agent, every bundled plugin) and must not have imported cryptography (only with a
keyring) or numpy (only for a weighted or bulk ownership table). Setting a keyring
up then does import cryptography, so the check is not vacuous."""

from __future__ import annotations

import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(
    """
    import sys
    import gossip.cli
    import gossip.runtime.agent
    import gossip.runtime.keys.service
    import gossip.runtime.ownership.service
    import gossip.runtime.store.service
    import gossip.security
    heavy = sorted({m.split(".")[0] for m in sys.modules} & {"cryptography", "numpy"})
    print(",".join(heavy))
    from gossip.security import AesGcmSealer  # the lazy name resolves
    print("cryptography" in sys.modules, AesGcmSealer.__name__)
    """
)


def test_start_up_imports_leave_out_cryptography_and_numpy() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    assert out[0] == ""
    assert out[1] == "True AesGcmSealer"
