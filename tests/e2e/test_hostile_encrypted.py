"""An encrypted agent answers only key holders: forged, mutated, replayed and
plaintext datagrams and streams get no reply at all and are counted by reason.
"""

from __future__ import annotations

import random
import socket
import struct
import time
from pathlib import Path

import pytest
from cluster_helpers import stop_at_once
from hostile_traffic import udp_socket_field

from gossip.client.localcluster import AgentProcess, LocalCluster
from gossip.core.membership.config import Config
from gossip.core.membership.messages import Ack, Ping
from gossip.core.membership.wire import Codec
from gossip.runtime import framing
from gossip.security.keyring import Keyring, encode_key, generate_key
from gossip.security.sealer import AesGcmSealer

pytestmark = pytest.mark.e2e

FORGERIES = 5_000


def rejected(agent: AgentProcess) -> dict[str, float]:
    text = str(agent.api().call("GET", "/v1/metrics", timeout=5.0))
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("gossip_datagrams_rejected_total{"):
            labels, value = line.rsplit(" ", 1)
            out[labels.split('"')[1]] = float(value)
    return out


def replies(sock: socket.socket, wait: float) -> list[bytes]:
    sock.settimeout(0.05)
    got = []
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            got.append(sock.recv(65536))
        except TimeoutError:
            continue
    return got


def test_an_encrypted_agent_answers_key_holders_only(tmp_path: Path) -> None:
    key = generate_key()
    with LocalCluster(1, tmp_path, extra_args=["--encrypt-key", encode_key(key)]) as cluster:
        cluster.start()
        cluster.wait_all_alive(20)
        agent = cluster.agents[0]
        codec = Codec(Config.for_profile("local", cluster_name="default"))
        ours = AesGcmSealer(Keyring([key]), "default")
        plain_ping = framing.encode_member_datagram(codec.frame(Ping(41, agent.name)))
        ping = ours.seal(plain_ping)
        target = ("127.0.0.1", agent.port)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            # a key holder's ping is acked, sealed
            sock.sendto(ping, target)
            answers = replies(sock, 1.0)
            assert len(answers) == 1
            channel, body = framing.decode_datagram(ours.open(answers[0]))
            assert channel is None and Ack(41) in codec.decode_packet(body)
            # the very same bytes again: a replay, refused without a reply
            before = rejected(agent)
            sock.sendto(ping, target)
            assert replies(sock, 1.0) == []
            # forgeries: mutated sealed pings, random bytes, plaintext, another key
            rng = random.Random(7)
            stranger = AesGcmSealer(Keyring([generate_key()]), "default")
            forged = []
            for i in range(FORGERIES):
                kind = i % 4
                if kind == 0:
                    data = bytearray(ours.seal(plain_ping))
                    data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
                    forged.append(bytes(data))
                elif kind == 1:
                    forged.append(rng.randbytes(rng.randint(0, 200)))
                elif kind == 2:
                    forged.append(framing.encode_member_datagram(codec.frame(Ping(i, agent.name))))
                else:
                    forged.append(stranger.seal(framing.encode_member_datagram(b"x")))
            drops = udp_socket_field(agent.port, "drops")
            for chunk in range(0, FORGERIES, 500):
                for data in forged[chunk : chunk + 500]:
                    sock.sendto(data, target)
                assert replies(sock, 0.2) == []
            assert replies(sock, 1.0) == []
            assert udp_socket_field(agent.port, "drops") == drops
        time.sleep(1.5)
        after = rejected(agent)
        counted = {r: after.get(r, 0) - before.get(r, 0) for r in after}
        assert sum(counted.values()) == FORGERIES + 1, counted
        assert counted.get("replayed", 0) >= 1
        assert set(counted) <= {
            "replayed", "decrypt_failed", "unknown_key", "not_encrypted", "truncated", "stale"
        }  # fmt: skip
        # a stream frame that does not open is cut without a byte in reply
        with socket.create_connection(target, timeout=2) as tcp:
            frame = stranger.seal(framing.encode_request("member", b"x"))
            tcp.sendall(struct.pack(">I", len(frame)) + frame)
            tcp.settimeout(3)
            assert tcp.recv(100) == b""
        stop_at_once(cluster)
