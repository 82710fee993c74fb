"""Hostile traffic generators for the end-to-end hostile-input tests.

Rules: everything goes to 127.0.0.1 only, at a bounded rate and for a bounded
time. Datagram payloads are random or mutated valid packets built from
messages that name no real member and carry no address (so a mutation cannot
make an agent send anywhere but back to us); `expected_rejections` replays the
agent's own decoding to tell how many of them it must refuse.
"""

from __future__ import annotations

import random
import select
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from gossip.core.membership.config import Config
from gossip.core.membership.messages import Ack, Dead, Left, Message, Nack, Ping, PushPull, Suspect
from gossip.core.membership.wire import Codec
from gossip.core.membership.wireschema import WireError
from gossip.runtime import framing

HOST = "127.0.0.1"
HANDLED_KINDS = (Ping, Ack, Nack, Suspect, Dead, Left)
"""Kinds the node dispatches from a datagram; others are refused one by one."""


def seed_packets(codec: Codec, rng: random.Random) -> list[bytes]:
    """Valid datagram payloads (plaintext, member demux) about ghosts only."""
    pool: list[Message] = [
        Ping(rng.randrange(1 << 32), "ghost-target"),
        Ack(rng.randrange(1 << 32)),
        Nack(rng.randrange(1 << 32)),
        Suspect("ghost-a", rng.randrange(5), "ghost-b"),
        Dead("ghost-c", rng.randrange(5), "ghost-d"),
        Left("ghost-e", rng.randrange(5)),
        PushPull(join=False, entries=()),
    ]
    # A one-message frame is `prefix, 0x81, part`: its part is what a packet carries.
    parts = [codec.frame(m)[len(codec.prefix) + 1 :] for m in pool]
    out = []
    for _ in range(40):
        chosen = rng.sample(parts, rng.randint(1, 4))
        out.append(framing.encode_member_datagram(codec.packet(chosen)))
    return out


def mutate(data: bytes, rng: random.Random, seeds: list[bytes]) -> bytes:
    b = bytearray(data)
    choice = rng.randrange(9)
    if choice == 0 and b:
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif choice == 1 and b:
        b[rng.randrange(len(b))] = rng.randrange(256)
    elif choice == 2:
        del b[rng.randrange(len(b) + 1) :]
    elif choice == 3:
        at = rng.randrange(len(b) + 1)
        b[at:at] = rng.randbytes(rng.randint(1, 16))
    elif choice == 4 and b:
        at = rng.randrange(len(b))
        del b[at : at + rng.randint(1, 16)]
    elif choice == 5:
        at = rng.randrange(len(b) + 1)  # a CBOR head claiming an enormous length
        b[at:at] = bytes([rng.choice((0x5B, 0x7B, 0x9B, 0xBB))]) + b"\xff" * 8
    elif choice == 6:
        other = rng.choice(seeds)
        b = b[: rng.randrange(len(b) + 1)] + other[rng.randrange(len(other) + 1) :]
    elif choice == 7:
        b = b[:1] + b"\x81" * rng.randint(50, 1200) + b[1:]  # nesting bomb
    else:
        b += b[1 : 1 + rng.randint(1, 64)]  # trailing bytes
    return bytes(b)


def build_datagrams(n: int, codec: Codec, rng: random.Random) -> list[bytes]:
    seeds = seed_packets(codec, rng)
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.25:
            out.append(rng.randbytes(rng.randint(0, 1500)))
        elif r < 0.28:
            out.append(b"\x00" + rng.randbytes(rng.randint(1400, 9000)))
        elif r < 0.30:
            out.append(b"\x01" + rng.randbytes(rng.randint(0, 40)))
        else:
            data = rng.choice(seeds)
            for _ in range(rng.randint(1, 3)):
                data = mutate(data, rng, seeds)
            out.append(data)
    return out


def expected_rejections(datagrams: list[bytes], codec: Codec) -> int:
    """How many refusals the agent must count for these datagrams."""
    refused = 0
    for data in datagrams:
        try:
            channel, body = framing.decode_datagram(data)
        except framing.FrameError:
            refused += 1
            continue
        if channel is not None:
            refused += 1  # no service registers a datagram channel by that name
            continue
        try:
            messages = codec.decode_packet(body)
        except WireError:
            refused += 1
            continue
        refused += sum(1 for m in messages if not isinstance(m, HANDLED_KINDS))
    return refused


def local_codec(cluster_name: str = "default") -> Codec:
    return Codec(Config.for_profile("local", cluster_name=cluster_name))


def flood(port: int, datagrams: list[bytes], rate: float, time_limit: float) -> float:
    """Send every datagram to HOST:port at no more than `rate` per second, pausing
    while the agent's receive queue is over a third full (so a busy machine slows
    the flood rather than overflowing the agent); seconds taken."""
    start = time.monotonic()
    burst = 50
    queue_limit = _rmem_default() // 3
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i in range(0, len(datagrams), burst):
            while udp_socket_field(port, "rx_queue") > queue_limit:
                if time.monotonic() - start > time_limit:
                    raise AssertionError(f"the agent drained too slowly ({i} sent)")
                time.sleep(0.005)
            for data in datagrams[i : i + burst]:
                sock.sendto(data, (HOST, port))
            ahead = start + (i + burst) / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    return time.monotonic() - start


def _rmem_default() -> int:
    with open("/proc/sys/net/core/rmem_default") as f:
        return int(f.read())


def udp_socket_field(port: int, field: str) -> int:
    """`rx_queue` (bytes waiting) or `drops` (datagrams the kernel dropped at a
    full buffer) of the UDP socket bound to 127.0.0.1:port, from /proc/net/udp."""
    wanted = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == wanted:
                if field == "rx_queue":
                    return int(fields[4].split(":")[1], 16)
                return int(fields[-1])
    raise LookupError(f"no UDP socket on 127.0.0.1:{port}")


@dataclass
class StreamResult:
    case: str
    seconds: float
    """From the first byte sent until the agent closed the connection."""
    reply: bytes


def _until_closed(sock: socket.socket, limit: float, trickle: bytes = b"") -> bytes:
    """Read (sending `trickle` a byte at a time meanwhile) until EOF or `limit`."""
    sock.settimeout(0.1)
    reply = bytearray()
    deadline = time.monotonic() + limit
    sent = 0
    while time.monotonic() < deadline:
        if sent < len(trickle):
            try:
                sock.send(trickle[sent : sent + 1])
                sent += 1
            except OSError:
                return bytes(reply)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return bytes(reply)
        if not chunk:
            return bytes(reply)
        reply += chunk
    raise AssertionError(f"connection still open after {limit} s")


def stream_case(port: int, case: str, limit: float, max_stream_bytes: int) -> StreamResult:
    start = time.monotonic()
    with socket.create_connection((HOST, port), timeout=2) as sock:
        trickle = b""
        if case == "oversized":
            sock.sendall(struct.pack(">I", 0xFFFFFFF0))
        elif case == "truncated":
            sock.sendall(struct.pack(">I", 100) + b"x" * 10)
            sock.shutdown(socket.SHUT_WR)
        elif case == "slow":
            trickle = struct.pack(">I", 100) + b"y" * 100
        elif case == "silent":
            pass
        elif case == "unknown_channel":
            frame = framing.encode_request("nosuchchannel", b"hello")
            sock.sendall(struct.pack(">I", len(frame)) + frame)
        elif case == "garbage_member":
            frame = framing.encode_request("member", random.randbytes(300))
            sock.sendall(struct.pack(">I", len(frame)) + frame)
        elif case == "endless":
            sock.sendall(struct.pack(">I", max_stream_bytes))
            chunk = b"z" * 65536
            sock.settimeout(0.5)
            deadline = time.monotonic() + limit
            try:
                while time.monotonic() < deadline:
                    sock.send(chunk)
            except OSError:
                return StreamResult(case, time.monotonic() - start, b"")
        else:
            raise ValueError(case)
        reply = _until_closed(sock, limit, trickle)
    return StreamResult(case, time.monotonic() - start, reply)


def hold_connections(port: int, count: int, limit: float) -> tuple[int, float]:
    """Open `count` idle connections at once: (how many were closed within 0.5 s,
    seconds until the last one was closed)."""
    socks = [socket.create_connection((HOST, port), timeout=2) for _ in range(count)]
    start = time.monotonic()
    closed_fast = 0
    try:
        waiting = set(socks)
        while waiting and time.monotonic() - start < limit:
            readable, _, _ = select.select(list(waiting), [], [], 0.05)
            for sock in readable:
                try:
                    data = sock.recv(1)
                except OSError:
                    data = b""
                if not data:
                    waiting.discard(sock)
                    closed_fast += time.monotonic() - start < 0.5
        if waiting:
            raise AssertionError(f"{len(waiting)} idle connections open after {limit} s")
        return closed_fast, time.monotonic() - start
    finally:
        for sock in socks:
            sock.close()


def http_case(port: int, case: str, limit: float) -> StreamResult:
    start = time.monotonic()
    with socket.create_connection((HOST, port), timeout=2) as sock:
        trickle = b""
        if case == "slowloris":
            trickle = b"GET /v1/health HTTP/1.1\r\nHost: x\r\n" + b"X-a: b\r\n" * 100
        elif case == "huge_header":
            sock.sendall(b"GET /v1/health HTTP/1.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
        elif case == "huge_body":
            sock.sendall(b"POST /v1/join HTTP/1.1\r\nHost: x\r\nContent-Length: 900000000\r\n\r\n")
        elif case == "garbage":
            sock.sendall(random.randbytes(2000))
        elif case == "many_fields":
            query = b"&".join(b"f%d=1" % i for i in range(500))
            sock.sendall(b"GET /v1/members?" + query + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        else:
            raise ValueError(case)
        reply = _until_closed(sock, limit, trickle)
    return StreamResult(case, time.monotonic() - start, reply)


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def settled_rss_kib(pid: int, log_path: Path, timeout: float = 15.0) -> int:
    """RSS once start-up allocations are done: after the ownership table was first
    built (when that service runs) and two readings a second apart agree."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and b"ownership_changed" not in log_path.read_bytes():
        time.sleep(0.2)
    last = rss_kib(pid)[0]
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = rss_kib(pid)[0]
        if abs(now - last) < 1024:
            return now
        last = now
    return last
