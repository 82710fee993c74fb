"""This node's persistent identity under --data-dir: a node id and its incarnation.

Rules: the file is small JSON, bounded on read, written atomically (temp file,
fsync, rename, fsync of the directory) so a crash leaves either the old or the
new content. A missing file is a fresh identity; an unreadable one is an error
(starting at incarnation 0 after a crash could let stale state win).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, replace
from pathlib import Path

from gossip.atomicfile import write_atomic

FILE_NAME = "identity.json"
MAX_BYTES = 4096


class IdentityError(Exception):
    pass


@dataclass(frozen=True)
class Identity:
    node_id: str
    incarnation: int = 0
    name: str = ""

    def with_incarnation(self, incarnation: int) -> Identity:
        return replace(self, incarnation=incarnation)


def load_identity(data_dir: Path, name: str) -> Identity:
    """The stored identity, or a new one. The caller restarts above `incarnation`."""
    path = data_dir / FILE_NAME
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return Identity(node_id=secrets.token_hex(16), incarnation=0, name=name)
    except OSError as exc:
        raise IdentityError(f"cannot read {path}: {exc.strerror}") from None
    try:
        if len(raw) > MAX_BYTES:
            raise ValueError("file too large")
        data = json.loads(raw)
        node_id = data["node_id"]
        incarnation = data["incarnation"]
        if not isinstance(node_id, str) or not isinstance(incarnation, int) or incarnation < 0:
            raise ValueError("bad field types")
    except (ValueError, KeyError, TypeError) as exc:
        raise IdentityError(f"{path} is corrupt ({exc}); move it away to start fresh") from None
    return Identity(node_id=node_id, incarnation=incarnation, name=str(data.get("name", name)))


def save_identity(data_dir: Path, identity: Identity) -> None:
    body = {"node_id": identity.node_id, "incarnation": identity.incarnation, "name": identity.name}
    write_atomic(data_dir / FILE_NAME, json.dumps(body).encode())


class IdentityKeeper:
    """This run's identity: loaded at start (one above the stored incarnation, saved at
    once), then saved again whenever the core reports a higher incarnation. Without a
    data directory it is a fresh in-memory identity at incarnation 0."""

    def __init__(self, data_dir: Path | None, name: str) -> None:
        self.data_dir = data_dir
        if data_dir is None:
            self.identity = Identity(node_id=secrets.token_hex(16), name=name)
            return
        stored = load_identity(data_dir, name)
        # Restart above anything we may have said before the crash or stop.
        self.identity = stored.with_incarnation(stored.incarnation + 1)
        save_identity(data_dir, self.identity)

    def incarnation_changed(self, incarnation: int) -> None:
        if self.data_dir is not None and incarnation > self.identity.incarnation:
            self.identity = self.identity.with_incarnation(incarnation)
            save_identity(self.data_dir, self.identity)
