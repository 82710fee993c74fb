"""The agent's view of the network: one UDP endpoint, a TCP listener, TCP connects.

Rules: the Agent talks only to a `Network`, so tests and the simulator can hand it
an in-memory one; `SocketNetwork` is the real thing. A datagram send that fails
with an OSError (EPERM, ENOBUFS, ECONNREFUSED, EHOSTUNREACH, ...) is reported as
False, i.e. a lost packet, never raised. Receive errors caused by ICMP feedback
(ECONNREFUSED on Linux) are swallowed and the read is retried.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Awaitable, Callable
from typing import Protocol

import trio

from gossip.core.types import Address

MAX_DATAGRAM = 65535
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


class UdpEndpoint:
    def __init__(self, sock: trio.socket.SocketType) -> None:
        self._sock = sock
        host, port = sock.getsockname()[:2]
        self._local: Address = (str(host), int(port))

    @property
    def local_address(self) -> Address:
        return self._local

    async def send(self, to: Address, data: bytes) -> bool:
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
            return data, (str(src[0]), int(src[1]))

    def close(self) -> None:
        self._sock.close()


class SocketNetwork:
    """Real UDP/TCP sockets (IPv4)."""

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
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
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
        listeners = await trio.open_tcp_listeners(bind[1], host=bind[0])

        async def one(stream: trio.SocketStream) -> None:
            try:
                host, port = stream.socket.getpeername()[:2]
            except OSError:
                await stream.aclose()
                return
            await handler(stream, (str(host), int(port)))

        task_status.started()
        await trio.serve_listeners(one, listeners)

    async def connect(self, to: Address) -> trio.abc.Stream:
        return await trio.open_tcp_stream(to[0], to[1])


def _tcp_port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True
