"""A graceful leave hands this node's partitions to the members that replace it.

Rules:
- The pairs to hand over are each stored partition with each member that
  replicates it once this node is gone and does not replicate it now.
- Each pair is synced by anti-entropy sessions until one ends in sync; a
  failed session (the peer gone or unreachable) ends that pair, and the next
  one starts.
- Progress is logged per pair and in total; the caller bounds the whole
  hand-over in time (handover_timeout), and a node with no peer hands nothing.
"""

from __future__ import annotations

import structlog

from gossip.core.store.placement import Placement
from gossip.runtime.store.settings import StoreSettings
from gossip.runtime.store.storage import KVStorage
from gossip.runtime.store.sync import AntiEntropy

log = structlog.get_logger("gossip.kv")


async def hand_over(
    me: str, placement: Placement, settings: StoreSettings, storage: KVStorage, sync: AntiEntropy
) -> None:
    rest = set(placement.members) - {me}
    if not rest:
        return
    after = Placement(rest, partitions=settings.partitions, replicas=settings.replicas)
    todo = [
        (part, name)
        for part in storage.partitions()
        for name in after.replicas(part)
        if name not in placement.replicas(part)
    ]
    log.info("kv_handover_started", pairs=len(todo), records=storage.count())
    done = sent = 0
    for part, name in todo:
        complete = False
        while not complete:
            stats = await sync.sync(part, name)
            if stats is None or stats.error is not None:
                break
            sent += stats.records_sent
            complete = stats.complete
        done += complete
        log.info(
            "kv_partition_handed_over",
            partition=part,
            to=name,
            complete=complete,
            progress=f"{done}/{len(todo)}",
            records_sent=sent,
        )
    (log.info if done == len(todo) else log.warning)(
        "kv_handover_finished", complete=done, pairs=len(todo), records_sent=sent
    )
