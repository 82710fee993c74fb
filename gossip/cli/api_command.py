"""Running one command against an agent's control API.

Rules: the command gets an ApiClient (--api / GOSSIP_API, --api-token / GOSSIP_API_TOKEN)
and the parsed arguments, and returns the exit status. An unreachable agent or an error
answer (ApiClientError), or a local file that cannot be read (OSError), prints one line
`gossip NAME: why` to stderr and exits 1; Ctrl-C exits 130 without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from gossip.client.api import ApiClient, ApiClientError

ClientCommand = Callable[[ApiClient, argparse.Namespace], int]
Command = Callable[[argparse.Namespace], int]

INTERRUPTED = 130


def api_command(name: str, command: ClientCommand) -> Command:
    """`command` as an argparse `func`; `name` is how error lines name it ("kv put")."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(ApiClient.from_args(args), args)
        except (ApiClientError, OSError) as exc:
            print(f"gossip {name}: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return INTERRUPTED

    return run
