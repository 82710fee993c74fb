"""The keys service in-process: who may change keys, fan-out answers, persistence."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gossip.core.types import Address, MemberInfo, MemberState
from gossip.runtime.keys.service import CHANNEL, KeysService, security_settings
from gossip.runtime.metrics import Registry
from gossip.runtime.service import StreamError
from gossip.security.keyfile import keyring_path, load_keyring
from gossip.security.keyops import Command
from gossip.security.keyring import Keyring, key_label
from gossip.security.sealer import AesGcmSealer, Policy

K1, K2 = bytes([1]) * 32, bytes([2]) * 32
PEER: Address = ("10.0.0.9", 40000)


class FakeHost:
    """Just enough of the agent: a name, metrics, a data dir and a member list
    whose other members answer through `replies` (or fail with a StreamError)."""

    def __init__(self, data_dir: Path | None, replies: dict[Address, Any]) -> None:
        self.name = "me"
        self.metrics = Registry()
        self.data_dir = data_dir
        self.replies = replies
        self.asked: list[Address] = []

    def members(self) -> list[MemberInfo]:
        me = MemberInfo("me", ("10.0.0.1", 7946), MemberState.ALIVE, 1)
        others = [
            MemberInfo(f"n{i}", addr, MemberState.ALIVE, 1) for i, addr in enumerate(self.replies)
        ]
        gone = MemberInfo("gone", ("10.0.0.99", 7946), MemberState.DEAD, 1)
        return [me, *others, gone]

    async def request(self, to: Address, channel: str, body: bytes) -> bytes | None:
        assert channel == CHANNEL
        self.asked.append(to)
        reply = self.replies[to]
        if isinstance(reply, list):
            reply = reply.pop(0)
        if isinstance(reply, StreamError):
            raise reply
        return json.dumps(reply).encode() if reply is not None else None


def service(
    tmp_path: Path | None, replies: dict[Address, Any], lenient: bool = True
) -> KeysService:
    ring = Keyring([K1])
    sealer = AesGcmSealer(ring, "c", Policy(require_incoming=not lenient))
    svc = KeysService(ring, sealer)
    svc.attach(FakeHost(tmp_path, replies))
    return svc


async def test_a_plaintext_key_command_is_refused_during_a_rollout() -> None:
    svc = service(None, {})
    assert svc.sealer is not None
    svc.sealer.open(b"\x05plaintext", PEER)  # accepted: plaintext is still allowed
    raw = await svc._on_stream(PEER, Command("install", K2).encode())
    assert raw is not None and json.loads(raw) == {
        "ok": False,
        "error": "key commands must be encrypted",
    }
    assert svc.keyring is not None and K2 not in svc.keyring


async def test_a_sealed_key_command_is_applied_and_persisted(tmp_path: Path) -> None:
    svc = service(tmp_path, {})
    assert svc.sealer is not None
    peer_sealer = AesGcmSealer(Keyring([K1]), "c")
    svc.sealer.open(peer_sealer.seal(b"\x00frame"), PEER)
    raw = await svc._on_stream(PEER, Command("install", K2).encode())
    assert raw is not None and json.loads(raw)["ok"] is True
    stored = load_keyring(keyring_path(tmp_path))
    assert stored is not None and stored.all_keys() == [K1, K2]


async def test_fan_out_asks_every_live_member_again_when_busy_and_lists_the_silent() -> None:
    ok = {"ok": True, "primary": key_label(K1), "keys": [key_label(K1), key_label(K2)]}
    busy, silent = ("10.0.0.2", 7946), ("10.0.0.3", 7946)
    replies: dict[Address, Any] = {
        ("10.0.0.4", 7946): ok,
        busy: [StreamError("timeout"), ok],
        silent: [StreamError("timeout")] * 3,
    }
    svc = service(None, replies)
    summary = await svc.run_everywhere(Command("install", K2))
    assert summary["total"] == 4  # me + three live members; the dead one is not asked
    assert summary["failed"] == ["n2"]
    assert summary["nodes"]["n2"]["error"] == "no answer: timeout"
    assert summary["keys"][key_label(K2)] == {"installed": 3, "primary": 0}
    host = svc.host
    assert isinstance(host, FakeHost)
    assert host.asked.count(busy) == 2 and host.asked.count(silent) == 3


def test_security_settings_follow_the_agent_precedence() -> None:
    section = {"encrypt_key": "from-file", "encrypt_outgoing": False}
    env = {"GOSSIP_ENCRYPT_KEY": "from-env"}
    flags = argparse.Namespace(encrypt_key=None, encrypt_outgoing=None, require_encrypted=True)
    chosen = security_settings(section, flags, env)
    assert chosen["encrypt_key"] == "from-env"
    assert chosen["encrypt_outgoing"] is False and chosen["require_encrypted"] is True
    flags.encrypt_key = "from-flag"
    assert security_settings(section, flags, env)["encrypt_key"] == "from-flag"
    assert security_settings(section, None, {})["encrypt_key"] == "from-file"
