"""The agent's view of the network: one UDP endpoint, a TCP listener, TCP connects.

Rules: the Agent talks only to a `Network`, so tests and the simulator can hand it
an in-memory one; `SocketNetwork` is the real thing. A datagram send that fails
with an OSError (EPERM, ENOBUFS, ECONNREFUSED, EHOSTUNREACH, ...) is reported as
False, i.e. a lost packet, never raised. Receive errors caused by ICMP feedback
(ECONNREFUSED on Linux) are swallowed and the read is retried.
Families: an IPv4 bind speaks IPv4, an IPv6 bind IPv6 only, and the IPv6
wildcard `::` both (one dual-stack socket). Peers are named the way they
advertise themselves: an IPv4 peer seen through a dual-stack socket as
`::ffff:a.b.c.d` is reported as `a.b.c.d`, and mapped back when we send to it.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Awaitable, Callable
from typing import Protocol

import trio

from gossip.core.types import Address
from gossip.hostport import is_ipv6

MAX_DATAGRAM = 65535
LISTEN_BACKLOG = 128
_MAPPED = "::ffff:"
StreamServer = Callable[[trio.abc.Stream, Address], Awaitable[None]]
_TRANSIENT_RECV = {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EAGAIN}


class DatagramEndpoint(Protocol):
    @property
    def local_address(self) -> Address: ...

    async def send(self, to: Address, data: bytes) -> bool:
        """True when handed to the network; False for a failed (= lost) send."""
        ...

    async def receive(self) -> tuple[bytes, Address]: ...

    def close(self) -> None: ...


class Network(Protocol):
    async def open_datagram(self, bind: Address) -> DatagramEndpoint: ...

    async def serve_streams(
        self,
        bind: Address,
        handler: StreamServer,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None: ...

    async def connect(self, to: Address) -> trio.abc.Stream: ...


def families(bind_host: str) -> frozenset[int]:
    """The IP versions a socket bound to `bind_host` reaches (see the header)."""
    if bind_host == "::":
        return frozenset({4, 6})
    return frozenset({6}) if is_ipv6(bind_host) else frozenset({4})


def peer_host(host: str) -> str:
    """A peer's host as it advertises itself: an IPv4-mapped IPv6 address unmapped."""
    return host[len(_MAPPED) :] if host.startswith(_MAPPED) and "." in host else host


def _is_ipv4_literal(host: str) -> bool:
    return host.count(".") == 3 and host.replace(".", "").isdigit()


def _socket(bind_host: str, kind: socket.SocketKind) -> trio.socket.SocketType:
    family = socket.AF_INET6 if is_ipv6(bind_host) else socket.AF_INET
    sock = trio.socket.socket(family, kind)
    if family == socket.AF_INET6:
        # Explicit, whatever the system default: dual stack only on the wildcard.
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(bind_host != "::"))
    return sock


class UdpEndpoint:
    def __init__(self, sock: trio.socket.SocketType) -> None:
        self._sock = sock
        host, port = sock.getsockname()[:2]
        self._local: Address = (str(host), int(port))
        self._v6 = sock.family == socket.AF_INET6

    @property
    def local_address(self) -> Address:
        return self._local

    async def send(self, to: Address, data: bytes) -> bool:
        if self._v6 and _is_ipv4_literal(to[0]):
            to = (_MAPPED + to[0], to[1])  # fails unless the socket is dual-stack: lost
        try:
            await self._sock.sendto(data, to)
        except OSError:
            return False
        return True

    async def receive(self) -> tuple[bytes, Address]:
        while True:
            try:
                data, src = await self._sock.recvfrom(MAX_DATAGRAM)
            except OSError as exc:
                if exc.errno in _TRANSIENT_RECV:
                    continue
                raise
            return data, (peer_host(str(src[0])), int(src[1]))

    def close(self) -> None:
        self._sock.close()


class SocketNetwork:
    """Real UDP/TCP sockets, IPv4, IPv6 or dual stack by the bind address."""

    def __init__(self, udp_buffer_bytes: int = 4 * 1024 * 1024) -> None:
        self._udp_buffer = udp_buffer_bytes

    async def open_datagram(self, bind: Address) -> DatagramEndpoint:
        if bind[1] != 0:
            return await self._open_udp(bind)
        # Port 0: the TCP listener must get the same port, so pick one free for both.
        for _ in range(50):
            udp = await self._open_udp(bind)
            if _tcp_port_free(bind[0], udp.local_address[1]):
                return udp
            udp.close()
        raise OSError(f"no port free for both UDP and TCP on {bind[0]}")

    async def _open_udp(self, bind: Address) -> DatagramEndpoint:
        sock = _socket(bind[0], socket.SOCK_DGRAM)
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            with contextlib.suppress(OSError):  # a smaller kernel limit is fine
                sock.setsockopt(socket.SOL_SOCKET, opt, self._udp_buffer)
        try:
            await sock.bind(bind)
        except OSError:
            sock.close()
            raise
        return UdpEndpoint(sock)

    async def serve_streams(
        self,
        bind: Address,
        handler: StreamServer,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        listeners = await open_stream_listeners(bind)

        async def one(stream: trio.SocketStream) -> None:
            try:
                host, port = stream.socket.getpeername()[:2]
            except OSError:
                await stream.aclose()
                return
            await handler(stream, (peer_host(str(host)), int(port)))

        task_status.started()
        await trio.serve_listeners(one, listeners)

    async def connect(self, to: Address) -> trio.abc.Stream:
        return await trio.open_tcp_stream(to[0], to[1])


async def open_stream_listeners(bind: Address) -> list[trio.SocketListener]:
    """TCP listeners on `bind`: one dual-stack socket for `::`, trio's otherwise."""
    if bind[0] != "::":
        return await trio.open_tcp_listeners(bind[1], host=bind[0])
    sock = _socket("::", socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        await sock.bind(bind)
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    return [trio.SocketListener(sock)]


def _tcp_port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if is_ipv6(host) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(host != "::"))
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True
