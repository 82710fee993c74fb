"""HOST:PORT text, read and written the same way everywhere (flags, config, API, logs).

Rules: an IPv6 literal stands in brackets, `[::1]:7946`, as in URLs; an IPv4
literal or a DNS name stands bare, `10.0.0.1:7946`. A colon-separated host
without brackets is refused with a hint, never guessed at. Input is bounded
(MAX_TEXT characters, a host of at most 253, a port of 0..65535); a name may
hold only letters, digits, `-`, `_` and `.`. Formatting puts the brackets back,
so `format_hostport(parse_hostport(text))` gives the canonical form.
"""

from __future__ import annotations

import ipaddress
import string

MAX_TEXT = 300
MAX_HOST = 253
_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "-_.")


def parse_hostport(text: str, default_port: int, default_host: str = "0.0.0.0") -> tuple[str, int]:
    """(host, port) from `[v6]:port`, `[v6]`, `host:port`, `host` or `:port`.

    An IPv6 host comes back without brackets (and lower-cased, as ipaddress
    writes it); a missing port is `default_port`, a missing host `default_host`.
    Raises ValueError naming what is wrong.
    """
    text = text.strip()
    if len(text) > MAX_TEXT:
        raise ValueError(f"address longer than {MAX_TEXT} characters")
    if text.startswith("["):
        inside, sep, rest = text[1:].partition("]")
        if not sep:
            raise ValueError(f"missing ']' in {text!r} (want [IPv6]:PORT)")
        host = _ipv6(inside, text)
        if rest and not rest.startswith(":"):
            raise ValueError(f"unexpected text after ']' in {text!r} (want [IPv6]:PORT)")
        return host, _port(rest[1:], text) if rest else default_port
    if text.count(":") > 1:
        raise ValueError(f"write an IPv6 address in brackets: [{text}] or [ADDRESS]:PORT")
    host, sep, port_text = text.partition(":")
    port = _port(port_text, text) if sep else default_port
    if not host:
        return default_host, port
    return _host(host, text), port


def format_hostport(host: str, port: int) -> str:
    """`[v6]:port` for an IPv6 host, `host:port` otherwise."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_ipv6(host: str) -> bool:
    return ":" in host


def _ipv6(inside: str, text: str) -> str:
    try:
        address = ipaddress.IPv6Address(inside)
    except ValueError:
        raise ValueError(f"bad IPv6 address in {text!r}") from None
    # ipaddress takes any zone text after "%"; an interface name is all we want.
    if address.scope_id is not None and not set(address.scope_id) <= _NAME_CHARS:
        raise ValueError(f"bad IPv6 zone in {text!r}")
    return str(address)


def _port(port_text: str, text: str) -> int:
    if not port_text.isdigit() or len(port_text) > 5 or int(port_text) > 65535:
        raise ValueError(f"bad port in {text!r} (want HOST:PORT)")
    return int(port_text)


def _host(host: str, text: str) -> str:
    if len(host) > MAX_HOST or not set(host) <= _NAME_CHARS:
        raise ValueError(f"bad host in {text!r} (want an IPv4 address, a name or [IPv6])")
    return host
