"""Each member's push-pull entry, encoded once per snapshot of that member.

Rules:
- A member's entry is encoded when its snapshot (an immutable MemberInfo,
  replaced on every change) is first needed, and reused until it changes; a
  push-pull frame is then a concatenation of cached bytes.
- Received entries are compared by their bytes: an entry equal to the current
  encoding of our own belief about that member is news to nobody, so it is
  skipped unparsed (encoding is canonical, so equal beliefs are equal bytes).
- The list of entries is rebuilt only when the table has changed (its
  version), so repeated syncs of a steady table cost no per-member work.
- An entry encoded for a snapshot that has since been replaced no longer
  counts as current; entries of reaped members are dropped when the cache
  outgrows the table.
"""

from __future__ import annotations

from collections.abc import Iterable

from gossip.core.membership.members import MemberTable
from gossip.core.membership.wire import state_row, wrap
from gossip.core.types import MemberInfo


class StateRows:
    def __init__(self) -> None:
        # name -> (snapshot, entry bytes, entry wrapped as a byte string)
        self._by_name: dict[str, tuple[MemberInfo, bytes, bytes]] = {}
        # entry bytes -> the snapshot they encode
        self._by_row: dict[bytes, MemberInfo] = {}
        self._version = -1
        self._wrapped: list[bytes] = []

    def wrapped(self, table: MemberTable) -> list[bytes]:
        """Every member's wrapped entry, ready to concatenate into a frame."""
        if table.version == self._version:
            return self._wrapped
        by_name, by_row = self._by_name, self._by_row
        out = []
        for m in table:
            hit = by_name.get(m.name)
            if hit is None or hit[0] is not m:
                if hit is not None:
                    by_row.pop(hit[1], None)
                row = state_row(m)
                hit = by_name[m.name] = (m, row, wrap(row))
                by_row[row] = m
            out.append(hit[2])
        if len(by_name) > 2 * len(table) + 64:
            self._rebuild(table)
        self._version, self._wrapped = table.version, out
        return out

    def note(self, m: MemberInfo, row: bytes) -> None:
        """`row` is already known to be the entry of snapshot `m` (it was
        derived from the bytes the update arrived in), so it need not be
        encoded again."""
        old = self._by_name.get(m.name)
        if old is not None:
            self._by_row.pop(old[1], None)
        self._by_name[m.name] = (m, row, wrap(row))
        self._by_row[row] = m

    def news(self, table: MemberTable, rows: Iterable[bytes]) -> list[bytes]:
        """The received entries that are not byte-equal to our current belief."""
        self.wrapped(table)  # bring every member's entry up to date
        by_row, get = self._by_row, table.get
        out = []
        for raw in rows:
            m = by_row.get(raw)
            if m is None or get(m.name) is not m:
                out.append(raw)
        return out

    def _rebuild(self, table: MemberTable) -> None:
        by_name = self._by_name
        self._by_name = {m.name: by_name[m.name] for m in table}
        self._by_row = {v[1]: v[0] for v in self._by_name.values()}
