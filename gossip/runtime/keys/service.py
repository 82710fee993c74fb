"""The keys service: cluster-wide key management and the agent's AES-GCM sealer.

Rules:
- `setup` (the plugin hook) builds the keyring from <data-dir>/keyring.json
  and/or the configured key, and installs an AesGcmSealer on the agent; with no
  key at all the agent stays plaintext and key commands answer an error. The
  configured key and policy follow the agent's precedence: flag >
  GOSSIP_ENCRYPT_KEY > the [security] table.
- GET /v1/keys and POST /v1/keys {"op", "key"} on one agent apply the command
  locally, then fan it out over the "keys" stream channel (sealed like all
  traffic) to every alive or suspect member in parallel, each bounded by the
  stream timeout and tried up to ATTEMPTS times (commands are idempotent), and
  answer one entry per node: a node that does not answer is listed as failed,
  never silently left out.
- A command arriving on the "keys" channel is applied locally only (no second
  fan-out), and only if it came sealed with one of our keys: while plaintext
  is still accepted (rollout) an unauthenticated peer must not change keys.
  Every change is persisted before the answer is sent.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import structlog
import trio

from gossip.core.types import Address, MemberState
from gossip.runtime.http import ApiError, ApiRequest, ApiResponse, Handler, RouteKey
from gossip.runtime.service import PluginHost, Service, ServiceHost, StreamError, StreamHandler
from gossip.runtime.settings import SettingsError, env_values, flag_values, layered
from gossip.security.keyfile import KeyfileError, keyring_path, load_keyring, save_keyring
from gossip.security.keyops import (
    Command,
    CommandError,
    apply_command,
    decode_command,
    parse_command,
    summarize,
)
from gossip.security.keyring import Keyring, KeyringError, decode_key, key_label

if TYPE_CHECKING:
    from gossip.security.sealer import AesGcmSealer

CHANNEL = "keys"
ATTEMPTS = 3
ENV_KEY = "GOSSIP_ENCRYPT_KEY"
SECTION = "security"
FLAGS = {
    "encrypt_key": "encrypt_key",
    "encrypt_outgoing": "encrypt_outgoing",
    "require_encrypted": "require_encrypted",
}
"""The [security] settings that have a flag, and its argparse attribute."""

log = structlog.get_logger("gossip.keys")


class KeysService(Service):
    name = "keys"

    def __init__(self, keyring: Keyring | None, sealer: AesGcmSealer | None = None) -> None:
        self.keyring = keyring
        self.sealer = sealer

    def attach(self, host: ServiceHost) -> None:
        super().attach(host)
        self._ops = host.metrics.counter(
            "key_commands_total", "Key commands applied on this node", ("op", "result")
        )
        host.metrics.gauge(
            "keyring_keys",
            "Keys installed in this node's keyring",
            read=lambda: {(): float(len(self.keyring.all_keys()) if self.keyring else 0)},
        )

    def routes(self) -> Mapping[RouteKey, Handler]:
        return {("GET", "/v1/keys"): self._http_list, ("POST", "/v1/keys"): self._http_command}

    def stream_channels(self) -> Mapping[str, StreamHandler]:
        return {CHANNEL: self._on_stream}

    # ---- applying a command on this node ----------------------------------------

    def apply_local(self, command: Command) -> dict[str, Any]:
        answer, changed = apply_command(self.keyring, command)
        if changed and self.keyring is not None and self.host.data_dir is not None:
            try:
                save_keyring(keyring_path(self.host.data_dir), self.keyring)
            except OSError as exc:
                answer = {**answer, "ok": False, "error": f"not persisted: {exc.strerror}"}
        self._ops.inc(labels={"op": command.op, "result": "ok" if answer["ok"] else "error"})
        if changed:
            log.info(
                "keyring_changed",
                op=command.op,
                key=key_label(command.key or b""),
                primary=answer.get("primary"),
            )
        return answer

    async def _on_stream(self, src: Address, body: bytes) -> bytes | None:
        if self.sealer is not None and not self.sealer.authenticated(src):
            self._ops.inc(labels={"op": "any", "result": "unauthenticated"})
            return json.dumps({"ok": False, "error": "key commands must be encrypted"}).encode()
        try:
            command = decode_command(body)
        except CommandError as exc:
            return json.dumps({"ok": False, "error": str(exc)}).encode()
        return json.dumps(self.apply_local(command)).encode()

    # ---- fanning out across the cluster -----------------------------------------

    async def run_everywhere(self, command: Command) -> dict[str, Any]:
        answers: dict[str, dict[str, Any]] = {self.host.name: self.apply_local(command)}
        peers = [
            m
            for m in self.host.members()
            if m.name != self.host.name and m.state in (MemberState.ALIVE, MemberState.SUSPECT)
        ]
        body = command.encode()

        async def ask(name: str, address: Address) -> None:
            answers[name] = await self._ask(address, body)

        async with trio.open_nursery() as nursery:
            for member in peers:
                nursery.start_soon(ask, member.name, member.address)
        return summarize(command, answers)

    async def _ask(self, address: Address, body: bytes) -> dict[str, Any]:
        """One member's answer. Commands are idempotent, so a member too busy to
        answer within the stream timeout is simply asked again."""
        reason = ""
        for _ in range(ATTEMPTS):
            try:
                raw = await self.host.request(address, CHANNEL, body)
            except StreamError as exc:
                reason = exc.reason
                continue
            try:
                answer = json.loads(raw or b"{}")
            except ValueError:
                answer = None
            if not isinstance(answer, dict):
                return {"ok": False, "error": "malformed answer"}
            return answer
        return {"ok": False, "error": f"no answer: {reason}"}

    async def _http_list(self, request: ApiRequest) -> ApiResponse:
        return ApiResponse.json(await self.run_everywhere(Command("list")))

    async def _http_command(self, request: ApiRequest) -> ApiResponse:
        try:
            command = parse_command(request.json())
        except CommandError as exc:
            raise ApiError(400, str(exc)) from None
        return ApiResponse.json(await self.run_everywhere(command))


# ---- plugin hooks ------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("encryption")
    group.add_argument(
        "--encrypt-key",
        metavar="BASE64",
        help=f"AES key from `gossip keygen` (or ${ENV_KEY}); kept in --data-dir/keyring.json",
    )
    group.add_argument(
        "--encrypt-outgoing",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="seal what this agent sends (default on; off only while rolling encryption out)",
    )
    group.add_argument(
        "--require-encrypted",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="refuse plaintext input (default on; off only while rolling encryption out)",
    )


def security_settings(
    section: Mapping[str, Any],
    args: argparse.Namespace | None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The security settings by the agent's precedence: flags > GOSSIP_ENCRYPT_KEY >
    the [security] table (`section`)."""
    env = os.environ if env is None else env
    return layered(flag_values(args, FLAGS), env_values(env, {"encrypt_key": ENV_KEY}), section)


def _flag(chosen: Mapping[str, Any], setting: str) -> bool:
    value = chosen.get(setting)
    if value is None:
        return True
    if not isinstance(value, bool):
        raise SettingsError(f"security.{setting}", "must be true or false")
    return value


def build_keyring(agent: PluginHost, args: argparse.Namespace | None) -> Keyring | None:
    chosen = security_settings(agent.settings_section(SECTION), args)
    text = chosen.get("encrypt_key") or None  # "" is no key
    key: bytes | None = None
    if text is not None:
        if not isinstance(text, str):
            raise SettingsError("encrypt_key", "must be a base64 string")
        try:
            key = decode_key(text)
        except KeyringError as exc:
            raise SettingsError("encrypt_key", str(exc)) from None
    keyring: Keyring | None = None
    if agent.data_dir is not None:
        try:
            keyring = load_keyring(keyring_path(agent.data_dir))
        except KeyfileError as exc:
            raise SettingsError("data_dir", str(exc)) from None
    if keyring is None:
        keyring = Keyring([key]) if key is not None else None
    elif key is not None and key not in keyring:
        keyring.install(key)  # the stored keyring wins; the given key still decrypts
    if keyring is not None and agent.data_dir is not None:
        save_keyring(keyring_path(agent.data_dir), keyring)
    return keyring


def setup(agent: PluginHost, args: argparse.Namespace | None) -> None:
    keyring = build_keyring(agent, args)
    sealer = None
    if keyring is not None:
        # Imported here: cryptography costs ~6 MiB resident, paid only with a keyring.
        from gossip.security.sealer import AesGcmSealer, Policy

        chosen = security_settings(agent.settings_section(SECTION), args)
        policy = Policy(
            encrypt_outgoing=_flag(chosen, "encrypt_outgoing"),
            require_incoming=_flag(chosen, "require_encrypted"),
        )
        sealer = AesGcmSealer(keyring, agent.config.cluster_name, policy)
        agent.set_sealer(sealer)
    agent.add_service(KeysService(keyring, sealer))
