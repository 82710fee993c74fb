"""Plain-text tables for the command line.

Rules: cells are strings; columns are as wide as their widest cell; headers are upper case and
trailing spaces are trimmed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(line.rstrip() for line in lines)


def members_table(members: Sequence[dict[str, Any]]) -> str:
    rows = [
        [
            str(m["name"]),
            str(m["address"]),
            str(m["state"]),
            str(m["incarnation"]),
            ",".join(f"{k}={v}" for k, v in sorted(m.get("tags", {}).items())),
        ]
        for m in members
    ]
    return format_table(["name", "address", "state", "incarnation", "tags"], rows)
