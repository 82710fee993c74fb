"""HOST:PORT text: IPv6 in brackets, bounded, refused with a hint when ambiguous."""

from __future__ import annotations

import pytest

from gossip.hostport import format_hostport, parse_hostport


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.1:7946", ("10.0.0.1", 7946)),
        ("node-1.cluster.local:80", ("node-1.cluster.local", 80)),
        ("[::1]:7946", ("::1", 7946)),
        ("[::]:0", ("::", 0)),
        ("[2001:DB8::1]:1", ("2001:db8::1", 1)),
        ("[fe80::1%eth0]:7946", ("fe80::1%eth0", 7946)),
        ("[::1]", ("::1", 9)),
        ("host", ("host", 9)),
        (":5", ("0.0.0.0", 5)),
        ("  10.0.0.1:7  ", ("10.0.0.1", 7)),
    ],
)
def test_addresses_parse_to_host_and_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_hostport(text, 9) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("::1:7946", "in brackets"),
        ("2001:db8::1", "in brackets"),
        ("[::1", "missing ']'"),
        ("[::1]7946", "after ']'"),
        ("[10.0.0.1]:7946", "bad IPv6"),
        ("[nonsense]:1", "bad IPv6"),
        ("[fe80::1%a b]:1", "bad IPv6 zone"),
        ("[fe80::1%]:1", "bad IPv6"),
        ("host:65536", "bad port"),
        ("host:-1", "bad port"),
        ("host:", "bad port"),
        ("host:000007946", "bad port"),
        ("bad host:1", "bad host"),
        ("h/st:1", "bad host"),
        ("a" * 254 + ":1", "bad host"),
        ("x" * 400, "longer than"),
    ],
)
def test_bad_addresses_are_refused_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_hostport(text, 9)


@pytest.mark.parametrize(
    "text", ["10.0.0.1:7946", "[::1]:7946", "[2001:db8::7]:1", "name.example:65535"]
)
def test_formatting_gives_back_the_canonical_text(text: str) -> None:
    assert format_hostport(*parse_hostport(text, 1)) == text
