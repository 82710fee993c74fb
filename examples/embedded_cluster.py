"""Three agents embedded in one trio program: membership, ownership and the store.

Run it with `python3 examples/embedded_cluster.py`. Each agent binds its own
loopback port, as separate hosts would; the first is the seed of the others.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from gossip import AgentSettings, open_agent
from gossip.client.localcluster import find_free_base
from gossip.runtime.logconfig import configure_logging
from gossip.runtime.ownership.service import OwnershipService
from gossip.runtime.store.service import StoreService


async def eventually(condition: Callable[[], bool]) -> None:
    """Poll a condition over several agents' views (no single event says "all agree")."""
    with trio.fail_after(30):
        while not condition():  # noqa: ASYNC110 - the condition spans several agents
            await trio.sleep(0.1)


async def main(n: int = 3) -> dict[str, object]:
    # Ports below the ephemeral range, free for UDP and TCP alike.
    base = find_free_base(n)
    ports = list(range(base, base + n))
    settings = [
        AgentSettings(
            name=f"app-{i}",
            bind=("127.0.0.1", port),
            join=() if i == 0 else (f"127.0.0.1:{ports[0]}",),
            api=None,  # embedded: no control API needed
            profile="local",
        )
        for i, port in enumerate(ports)
    ]
    ownerships = [OwnershipService(items=[f"job-{k}" for k in range(10)]) for _ in range(n)]
    stores = [StoreService() for _ in range(n)]
    async with (
        open_agent(settings[0], services=[ownerships[0], stores[0]]) as first,
        open_agent(settings[1], services=[ownerships[1], stores[1]]),
        open_agent(settings[2], services=[ownerships[2], stores[2]]),
    ):
        await eventually(lambda: sum(m.state.label == "alive" for m in first.members()) == n)

        # Members take work only after a settle time; then every agent
        # computes the same owner for a key from its own view.
        def one_owner_agreed() -> bool:
            owners = {o.owner("job-7") for o in ownerships}
            return len(owners) == 1 and None not in owners

        await eventually(one_owner_agreed)
        owner = ownerships[0].owner("job-7")
        await stores[0].put("greeting", b"hello", consistency="quorum")
        value = await stores[2].get("greeting", consistency="quorum")
        result: dict[str, object] = {
            "alive": sorted(m.name for m in first.members() if m.state.label == "alive"),
            "owner_of_job_7": owner,
            "greeting": value,
        }
        print(result)
        return result


if __name__ == "__main__":
    # The library never configures logging itself: that is the host program's call.
    configure_logging(level="warning")
    trio.run(main)
