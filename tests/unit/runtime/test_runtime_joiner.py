"""Seed handling: resolution and the advertised address (retries: the core's
joinretry.py, tested in tests/unit/membership)."""

from __future__ import annotations

from gossip.runtime import joiner


async def test_seed_names_resolve_and_bad_names_are_skipped() -> None:
    found = await joiner.resolve_seeds(
        ["localhost:7000", "127.0.0.1:7001", "no-such-host.invalid:1"]
    )
    assert ("127.0.0.1", 7000) in found
    assert ("127.0.0.1", 7001) in found
    assert len(found) == 2


def test_the_advertised_address_is_the_bind_address_unless_wildcard() -> None:
    assert joiner.advertise_address(("10.1.2.3", 7946)) == ("10.1.2.3", 7946)
    host, port = joiner.advertise_address(("0.0.0.0", 7946))
    assert port == 7946 and host != "0.0.0.0"
