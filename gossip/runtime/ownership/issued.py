"""The fencing tokens this node issued, kept in its data directory across restarts.

Rules:
- One sqlite file (FILE_NAME) with a row per item: the highest token issued for it here.
  The service records the tokens of a batch of acquisitions (committed, synchronous=FULL)
  before it hands any of them to handlers or subscribers, and before another task can read
  them; a row only ever goes up.
- load() returns at most MAX_ROWS rows, the highest tokens first, skipping rows that are not
  an item name (1..MAX_ITEM_BYTES bytes of UTF-8) and a token in 1..MAX_TOKEN. A file that
  sqlite cannot read is an error (IssuedError): starting without it could issue a token
  below one issued before.
- A record that fails (disk full, I/O error) is kept and tried again with the next one; the
  acquisition goes ahead, since this run's memory still keeps its tokens rising.
- Without a data directory nothing is kept, and tokens restart from the wall clock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path

import structlog

from gossip.core.ownership.fencing import MAX_HEARD
from gossip.runtime.ownership.notes import MAX_TOKEN
from gossip.runtime.ownership.settings import MAX_ITEM_BYTES

log = structlog.get_logger("gossip.ownership")

FILE_NAME = "ownership-tokens.sqlite"
MAX_ROWS = MAX_HEARD
"""Rows loaded at start: the restored tokens count as heard, which keeps this many."""


class IssuedError(OSError):
    """The file is there but cannot be read: the agent stops, as for any unreadable file."""


class IssuedTokens:
    """The highest token issued per item on this node, durable before it is announced."""

    def __init__(self, data_dir: Path | None) -> None:
        self.path = None if data_dir is None else data_dir / FILE_NAME
        self._db: sqlite3.Connection | None = None
        self._unsaved: dict[str, int] = {}

    def load(self) -> dict[str, int]:
        """The tokens issued here before (empty without a data directory)."""
        if self.path is None:
            return {}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None)
            db.text_factory = bytes  # a row that is not UTF-8 is skipped, not fatal
            db.execute("PRAGMA synchronous=FULL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS issued (item TEXT PRIMARY KEY, token INTEGER NOT NULL)"
            )
            rows = db.execute(
                "SELECT item, token FROM issued ORDER BY token DESC LIMIT ?", (MAX_ROWS,)
            ).fetchall()
        except (sqlite3.Error, OSError) as exc:
            raise IssuedError(
                f"cannot read the fencing tokens in {self.path} ({exc}); "
                "without them a restarted node could issue a token below an earlier one"
            ) from None
        self._db = db
        out: dict[str, int] = {}
        for raw, token in rows:
            item = _item(raw)
            if item is not None and type(token) is int and 0 < token <= MAX_TOKEN:
                out[item] = token
        return out

    def record(self, tokens: Mapping[str, int]) -> bool:
        """Make `tokens` durable (with any that failed before); whether all are now saved."""
        for item, token in tokens.items():
            self._unsaved[item] = max(token, self._unsaved.get(item, 0))
        if self._db is None or not self._unsaved:
            self._unsaved.clear()
            return True
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT INTO issued (item, token) VALUES (?, ?) ON CONFLICT (item)"
                    " DO UPDATE SET token = max(token, excluded.token)",
                    sorted(self._unsaved.items()),
                )
        except sqlite3.Error as exc:
            log.error("ownership_tokens_unsaved", items=len(self._unsaved), error=str(exc))
            return False
        self._unsaved.clear()
        return True

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def _item(raw: object) -> str | None:
    if not isinstance(raw, bytes) or not 0 < len(raw) <= MAX_ITEM_BYTES:
        return None
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return None
