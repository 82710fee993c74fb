"""Listing keys across the cluster: every alive member scanned, the answers merged.

Rules:
- Every alive member (and this node) is asked for the keys under a prefix;
  for a key found on several members the last writer wins, and deleted keys
  are left out after the merge (a tombstone hides an older live copy).
- A malformed answer, or a page that starts at or before the key asked to
  start after, is logged and ignored, never raised.
- A member that filled its page may hold more keys: a paged listing stops at
  the lowest last key of such members (everything up to it is complete), and
  a whole listing says it was cut.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from gossip.core.store.replica_ops import MAX_SCAN, KvOp, KvOpError, Listed, decode_scan_result
from gossip.core.types import MemberInfo, MemberState
from gossip.runtime.store.fanout import Answer, Replicas, fan_out

log = structlog.get_logger("gossip.kv")


def scanned(me: str, members: Sequence[MemberInfo]) -> list[str]:
    """The members a listing asks: the alive ones and this node."""
    alive = [m.name for m in members if m.state == MemberState.ALIVE]
    return sorted(set(alive) | {me})


async def list_page(
    cluster: Replicas,
    names: list[str],
    limit_s: float,
    prefix: str,
    limit: int = MAX_SCAN,
    after: str = "",
) -> tuple[list[Listed], str | None]:
    """One page of the live keys above `after` under `prefix`, from `names`, merged;
    and the key to pass as `after` for the next page (None: no more)."""
    op = KvOp("scan", key=prefix, limit=limit, after=after)
    answers = await fan_out(cluster, names, op, len(names), limit_s)
    merged: dict[str, Listed] = {}
    stop: str | None = None
    for a in answers:
        try:
            found = decode_scan_result(a.payload) if a.payload is not None else []
        except KvOpError as exc:
            log.warning("kv_scan_refused", replica=a.replica, reason=str(exc))
            continue
        if found and found[0].key <= after:
            log.warning("kv_scan_refused", replica=a.replica, reason="page start ignored")
            continue
        if len(found) >= limit:
            stop = found[-1].key if stop is None else min(stop, found[-1].key)
        _merge(merged, found)
    page = (i for i in merged.values() if not i.deleted and (stop is None or i.key <= stop))
    return sorted(page, key=lambda i: i.key), stop


async def list_all(
    cluster: Replicas, names: list[str], limit_s: float, prefix: str, limit: int
) -> tuple[list[Listed], bool]:
    """The live keys under `prefix` from `names`, merged; and whether the listing
    was cut at `limit`."""
    op = KvOp("scan", key=prefix, limit=limit)
    answers: list[Answer] = await fan_out(cluster, names, op, len(names), limit_s)
    merged: dict[str, Listed] = {}
    cut = False
    for a in answers:
        if a.payload is None:
            continue
        try:
            found = decode_scan_result(a.payload)
        except KvOpError as exc:
            log.warning("kv_scan_refused", replica=a.replica, reason=str(exc))
            continue
        cut |= len(found) >= limit  # that member may hold more
        _merge(merged, found)
    live = sorted((i for i in merged.values() if not i.deleted), key=lambda i: i.key)
    return live[:limit], cut or len(live) > limit


def _merge(merged: dict[str, Listed], found: list[Listed]) -> None:
    """Keep, for each key, the copy that wins (last writer wins)."""
    for item in found:
        seen = merged.get(item.key)
        if seen is None or item.order_key() > seen.order_key():
            merged[item.key] = item
