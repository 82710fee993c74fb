"""Seeds: how an agent names the cluster it joins, and how those names become addresses.

Rules: a seed is `HOST:PORT` (`[IPv6]:PORT` in brackets) or `srv:NAME`, checked
when the settings are read. Resolution goes through a `Resolver` (the seam tests
fake) and happens again on every attempt, since DNS may change while we wait.
A name joins every A and AAAA record it has, a `srv:` seed every target of its
SRV records (each target's A and AAAA records at the record's port), lowest
priority first. Only the families the local socket can reach are kept, then
at most MAX_ADDRESSES_PER_SEED addresses per seed (of at most MAX_SRV_TARGETS
targets). A failed lookup is logged and skipped, never fatal.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from gossip.core.types import Address
from gossip.hostport import is_ipv6, parse_hostport

DEFAULT_PORT = 7946
SRV_PREFIX = "srv:"
MAX_ADDRESSES_PER_SEED = 64
MAX_SRV_TARGETS = 64
MAX_NAME = 253

log = structlog.get_logger("gossip.seeds")


class ResolveError(Exception):
    """A lookup failed (no such name, no answer in time, no resolver)."""


@dataclass(frozen=True, slots=True)
class SrvRecord:
    priority: int
    weight: int
    port: int
    target: str


class Resolver(Protocol):
    async def addresses(self, host: str, port: int) -> list[Address]:
        """Every A and AAAA address of `host` (a literal gives itself); raises ResolveError."""
        ...

    async def srv(self, name: str) -> list[SrvRecord]:
        """The SRV records of `name`; raises ResolveError."""
        ...


@dataclass(frozen=True, slots=True)
class HostSeed:
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class SrvSeed:
    name: str


Seed = HostSeed | SrvSeed


def parse_seed(text: str) -> Seed:
    """A seed from its text; raises ValueError naming what is wrong."""
    text = text.strip()
    if text[: len(SRV_PREFIX)].lower() == SRV_PREFIX:
        return SrvSeed(check_dns_name(text[len(SRV_PREFIX) :]))
    host, port = parse_hostport(text, DEFAULT_PORT, default_host="")
    if not host:
        raise ValueError(f"seed {text!r} has no host")
    return HostSeed(host, port)


def check_dns_name(name: str) -> str:
    """`name` if it is a DNS name of at most 253 characters in labels of 1..63."""
    bare = name.rstrip(".") if name.endswith(".") else name
    labels = bare.split(".")
    ok = 0 < len(bare) <= MAX_NAME and all(
        0 < len(label) <= 63 and all(c.isascii() and (c.isalnum() or c in "-_") for c in label)
        for label in labels
    )
    if not ok:
        raise ValueError(f"bad DNS name {name!r}")
    return bare


def family_of(host: str) -> int:
    """6 for an IPv6 literal, 4 otherwise."""
    return 6 if is_ipv6(host) else 4


async def resolve_seeds(
    seeds: Sequence[str], resolver: Resolver, families: Collection[int] = (4, 6)
) -> list[Address]:
    """Every address the seeds name now, without repeats, in the order given."""
    found: list[Address] = []
    for text in seeds:
        try:
            addresses = await _resolve_one(parse_seed(text), resolver)
        except (ResolveError, ValueError) as exc:
            log.warning("seed_unresolved", seed=text, error=str(exc))
            continue
        reachable = [a for a in addresses if family_of(a[0]) in families]
        for address in reachable[:MAX_ADDRESSES_PER_SEED]:
            if address not in found:
                found.append(address)
    return found


async def _resolve_one(seed: Seed, resolver: Resolver) -> list[Address]:
    if isinstance(seed, HostSeed):
        return await resolver.addresses(seed.host, seed.port)
    records = await resolver.srv(seed.name)
    # RFC 2782: a lone target "." means the service is not offered at this name.
    targets = sorted((r for r in records if r.target not in ("", ".")), key=_srv_order)
    if not targets:
        raise ResolveError(f"no SRV targets for {seed.name}")
    found: list[Address] = []
    for record in targets[:MAX_SRV_TARGETS]:
        try:
            # The answer is untrusted: its target must be a DNS name, its port not 0.
            if not 0 < record.port <= 65535:
                raise ResolveError(f"port {record.port} out of range")
            target = check_dns_name(record.target)
            found += await resolver.addresses(target, record.port)
        except (ResolveError, ValueError) as exc:
            log.warning("srv_target_skipped", seed=seed.name, target=record.target, error=str(exc))
    return found


def _srv_order(record: SrvRecord) -> tuple[int, int]:
    """Lowest priority first, then the heavier weight."""
    return record.priority, -record.weight
