"""Finding the cluster: seed names through the system resolver and the
advertised address (retries and rejoining when alone are the core's
joinretry.py, tested in tests/unit/membership; parsing, records and SRV in
test_runtime_seeds.py)."""

from __future__ import annotations

from gossip.runtime import joiner
from gossip.runtime.dnsresolver import SystemResolver
from gossip.runtime.seeds import resolve_seeds


async def test_seed_names_resolve_and_bad_names_are_skipped() -> None:
    found = await resolve_seeds(
        ["localhost:7000", "127.0.0.1:7001", "no-such-host.invalid:1"], SystemResolver(), (4,)
    )
    assert ("127.0.0.1", 7000) in found
    assert ("127.0.0.1", 7001) in found
    assert all(port in (7000, 7001) for _, port in found)


def test_the_advertised_address_is_the_bind_address_unless_wildcard() -> None:
    assert joiner.advertise_address(("10.1.2.3", 7946)) == ("10.1.2.3", 7946)
    assert joiner.advertise_address(("::1", 7946)) == ("::1", 7946)
    host, port = joiner.advertise_address(("0.0.0.0", 7946))
    assert port == 7946 and host != "0.0.0.0" and ":" not in host
    host, port = joiner.advertise_address(("::", 7946))
    assert port == 7946 and host not in ("::", "0.0.0.0")
