"""The member snapshot: where the cluster was last seen, so a restart finds it.

Rules: the agent writes the alive members' names and addresses (itself left
out, at most MAX_MEMBERS) to <data_dir>/members.json every SAVE_INTERVAL_S
when they changed, and at shutdown; the write is atomic. At start, and at
each join retry, the snapshot's addresses join the seeds as join candidates
(whenever a snapshot exists: delete the file to start without it), so an
agent whose seeds all moved still finds the cluster through the members it
knew. The file is bounded on read; a malformed one, or a malformed entry, is
skipped, never a failed start.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from gossip.atomicfile import write_atomic
from gossip.core.types import Address, MemberInfo, MemberState
from gossip.hostport import format_hostport, parse_hostport

FILE_NAME = "members.json"
MAX_MEMBERS = 512
MAX_FILE_BYTES = 128 * 1024
MAX_NAME_CHARS = 255
SAVE_INTERVAL_S = 10.0


class SnapshotError(ValueError):
    pass


def encode(members: Iterable[MemberInfo], me: str) -> bytes:
    """The alive members other than `me`, by name, at most MAX_MEMBERS."""
    rows = sorted(
        (m.name, format_hostport(*m.address))
        for m in members
        if m.state == MemberState.ALIVE and m.name != me
    )[:MAX_MEMBERS]
    body = {"members": [{"name": n, "address": a} for n, a in rows]}
    return json.dumps(body, indent=1).encode() + b"\n"


def decode(raw: bytes) -> list[tuple[str, Address]]:
    """(name, address) of each well-formed entry; SnapshotError if the file is not
    a snapshot at all."""
    if len(raw) > MAX_FILE_BYTES:
        raise SnapshotError(f"larger than {MAX_FILE_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise SnapshotError(f"not JSON: {exc}") from None
    rows = data.get("members") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise SnapshotError('expected {"members": [...]}')
    found: list[tuple[str, Address]] = []
    for row in rows[:MAX_MEMBERS]:
        if not isinstance(row, dict):
            continue
        name, address = row.get("name"), row.get("address")
        if not isinstance(name, str) or not isinstance(address, str):
            continue
        if not 0 < len(name) <= MAX_NAME_CHARS or len(address) > MAX_NAME_CHARS:
            continue
        try:
            host, port = parse_hostport(address, 0)
        except ValueError:
            continue
        if 0 < port < 65536 and host:
            found.append((name, (host, port)))
    return found


class MemberSnapshot:
    """The snapshot file of one data directory (nothing without a directory)."""

    def __init__(self, data_dir: Path | None) -> None:
        self.path = data_dir / FILE_NAME if data_dir is not None else None
        self._written = b""

    def addresses(self) -> tuple[list[Address], str]:
        """The snapshot's addresses, and why none could be read ("" if fine or absent)."""
        if self.path is None:
            return [], ""
        try:
            with self.path.open("rb") as fh:
                raw = fh.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return [], ""
        except OSError as exc:
            return [], f"{self.path}: {exc.strerror}"
        try:
            rows = decode(raw)
        except SnapshotError as exc:
            return [], f"{self.path}: {exc}"
        self._written = raw
        return [address for _, address in rows], ""

    def save(self, members: Iterable[MemberInfo], me: str) -> bool:
        """Write the snapshot if it changed; True if written. An agent alone
        keeps the snapshot it has (the cluster it knew is still its best guess)."""
        if self.path is None:
            return False
        data = encode(members, me)
        if data == self._written or data == encode((), me):
            return False
        write_atomic(self.path, data)
        self._written = data
        return True
