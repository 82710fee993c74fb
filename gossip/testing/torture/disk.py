"""A node's disk for fault runs: sqlite connections that fail or stall on demand.

Rules: `Disk.connect` is the `StoreService(connect=...)` seam. While the disk is
full, a data-changing statement (`at="write"`) or a COMMIT (`at="commit"`) fails
with sqlite3.OperationalError("database or disk is full"); an I/O error fails the
same way with "disk I/O error". A failed COMMIT first rolls the transaction back,
as sqlite does itself for SQLITE_FULL and SQLITE_IOERR, so the files stay as of the
last commit. A slow disk stalls every write and commit by `slow_ms` of virtual
time while nothing else runs (the store writes on the trio thread). Reads never
fail. Killing a node closes its connection: what was committed stays, the rest
is gone, as after kill -9.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

FULL = "database or disk is full"
IO_ERROR = "disk I/O error"
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class Disk:
    def __init__(self, stall: Callable[[float], None] | None = None) -> None:
        self.failure: str | None = None
        """FULL or IO_ERROR while the disk fails, else None."""
        self.at = "commit"
        """Where a failure strikes: "write" (each data change) or "commit"."""
        self.slow_ms = 0.0
        self.stall = stall
        """Advances virtual time without yielding (MockClock.jump)."""
        self.injected = 0

    def connect(self, path: str) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None, factory=FaultyConnection)
        assert isinstance(db, FaultyConnection)
        db.disk = self
        return db

    def check(self, db: sqlite3.Connection, sql: str) -> None:
        head = sql.lstrip()[:8].upper()
        commit = head.startswith(("COMMIT", "END"))
        write = head.startswith(_WRITES)
        if not (commit or write):
            return
        if self.slow_ms > 0 and self.stall is not None:
            self.stall(self.slow_ms / 1000)
        if self.failure is None or (commit and self.at != "commit"):
            return
        if write and self.at != "write":
            return
        self.injected += 1
        if commit and db.in_transaction:
            sqlite3.Connection.execute(db, "ROLLBACK")
        raise sqlite3.OperationalError(self.failure)


class FaultyConnection(sqlite3.Connection):
    disk: Disk | None = None

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if self.disk is not None:
            self.disk.check(self, sql)
        return super().execute(sql, parameters)
