"""Address text: every address round-trips, and any text parses or is refused cleanly."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gossip.hostport import format_hostport, parse_hostport
from gossip.runtime.seeds import HostSeed, SrvSeed, parse_seed

hosts = st.ip_addresses().map(str) | st.from_regex(
    r"[a-z0-9]([a-z0-9-]{0,20}\.){0,3}[a-z]{1,8}", fullmatch=True
)
ports = st.integers(0, 65535)


@given(hosts, ports)
def test_every_address_round_trips_through_its_text(host: str, port: int) -> None:
    assert parse_hostport(format_hostport(host, port), 1) == (host, port)


@given(st.text(max_size=400))
def test_any_text_gives_a_bounded_address_or_value_error(text: str) -> None:
    try:
        host, port = parse_hostport(text, 1)
    except ValueError:
        return
    assert 0 <= port <= 65535
    assert 0 < len(host) <= 253 and not any(c.isspace() or c in "[]/" for c in host)


@given(st.text(max_size=400))
def test_any_text_gives_a_seed_or_value_error(text: str) -> None:
    try:
        seed = parse_seed(text)
    except ValueError:
        return
    assert isinstance(seed, HostSeed | SrvSeed)
