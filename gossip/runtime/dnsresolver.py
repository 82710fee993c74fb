"""The system's resolver behind the seeds' Resolver seam.

Rules: names go through getaddrinfo (so /etc/hosts and the host's resolver
settings apply), asking for every family; SRV records through dnspython, which
reads the host's resolver configuration (or asks the one nameserver given)
and parses the untrusted answer. Each lookup is bounded by RESOLVE_TIMEOUT and
by MAX_RECORDS kept; any failure becomes ResolveError with the reason.
"""

from __future__ import annotations

import socket

import trio

from gossip.core.types import Address
from gossip.runtime.seeds import ResolveError, SrvRecord

RESOLVE_TIMEOUT = 5.0
MAX_RECORDS = 64


class SystemResolver:
    def __init__(self, nameserver: Address | None = None) -> None:
        self._nameserver = nameserver
        """Where SRV queries go; None: the host's resolver configuration."""

    async def addresses(self, host: str, port: int) -> list[Address]:
        try:
            with trio.fail_after(RESOLVE_TIMEOUT):
                infos = await trio.socket.getaddrinfo(
                    host, port, family=socket.AF_UNSPEC, type=socket.SOCK_DGRAM
                )
        except trio.TooSlowError:
            raise ResolveError(f"no answer for {host} within {RESOLVE_TIMEOUT} s") from None
        except OSError as exc:
            raise ResolveError(str(exc)) from None
        found: list[Address] = []
        for family, *_, sockaddr in infos:
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            address = (str(sockaddr[0]), int(sockaddr[1]))
            if address not in found:
                found.append(address)
        return found[:MAX_RECORDS]

    async def srv(self, name: str) -> list[SrvRecord]:
        # Imported here: only agents given a srv: seed pay for loading it.
        try:
            import dns.asyncresolver
            import dns.exception
        except ImportError:  # a build without it: the seed fails, the agent runs on
            raise ResolveError("SRV lookups need dnspython, which is not installed") from None

        try:
            if self._nameserver is None:
                resolver = dns.asyncresolver.Resolver()
            else:
                resolver = dns.asyncresolver.Resolver(configure=False)
                resolver.nameservers = [self._nameserver[0]]
                resolver.port = self._nameserver[1]
            answer = await resolver.resolve(name, "SRV", lifetime=RESOLVE_TIMEOUT)
        except dns.exception.DNSException as exc:
            raise ResolveError(str(exc) or type(exc).__name__) from None
        except ImportError as exc:  # its trio backend is loaded on first use
            raise ResolveError(f"dnspython cannot run under trio here: {exc}") from None
        records: list[SrvRecord] = []
        for rdata in list(answer)[:MAX_RECORDS]:
            target = rdata.target.to_text(omit_final_dot=True)
            records.append(SrvRecord(rdata.priority, rdata.weight, rdata.port, target))
        return records
