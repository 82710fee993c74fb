"""Key-management commands as plain values: parse, apply to a keyring, answer.

Rules: a command is {"op": list|install|use|remove, "key": base64 (not for
list)}; parsing is bounded and strict (CommandError with a clear message).
Applying a command to one node's keyring returns that node's answer, a JSON
object that names keys by id only, never by value. `summarize` folds the
per-node answers into what the operator reads: which node has which key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gossip.security.keyring import Keyring, KeyringError, decode_key, encode_key, key_label

OPS = ("list", "install", "use", "remove")
MAX_COMMAND_BYTES = 1024


class CommandError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Command:
    op: str
    key: bytes | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op}
        if self.key is not None:
            out["key"] = encode_key(self.key)
        return out

    def encode(self) -> bytes:
        return json.dumps(self.to_json()).encode()


def parse_command(doc: Any) -> Command:
    if not isinstance(doc, Mapping):
        raise CommandError("expected a JSON object")
    op = doc.get("op")
    if op not in OPS:
        raise CommandError(f"op must be one of {', '.join(OPS)}")
    if op == "list":
        return Command("list")
    text = doc.get("key")
    if not isinstance(text, str):
        raise CommandError(f'"{op}" needs "key" (base64)')
    try:
        return Command(op, decode_key(text))
    except KeyringError as exc:
        raise CommandError(str(exc)) from None


def decode_command(raw: bytes) -> Command:
    if len(raw) > MAX_COMMAND_BYTES:
        raise CommandError("command too large")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise CommandError("command is not valid JSON") from None
    return parse_command(doc)


def keyring_view(keyring: Keyring | None) -> dict[str, Any]:
    if keyring is None:
        return {"primary": None, "keys": []}
    return keyring.describe()


def apply_command(keyring: Keyring | None, command: Command) -> tuple[dict[str, Any], bool]:
    """(this node's answer, whether the keyring changed)."""
    if command.op == "list":
        return {"ok": True, **keyring_view(keyring)}, False
    if keyring is None:
        return {"ok": False, "error": "encryption is not enabled on this node"}, False
    assert command.key is not None
    try:
        if command.op == "install":
            changed = keyring.install(command.key)
        elif command.op == "use":
            changed = keyring.use(command.key)
        else:
            changed = keyring.remove(command.key)
    except KeyringError as exc:
        return {"ok": False, "error": str(exc), **keyring_view(keyring)}, False
    return {"ok": True, "changed": changed, **keyring_view(keyring)}, changed


def summarize(command: Command, answers: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Per-node answers -> {"op", "nodes": {...}, "keys": {id: {"installed", "primary"}}, ...}."""
    keys: dict[str, dict[str, int]] = {}
    for answer in answers.values():
        for kid in answer.get("keys", []):
            entry = keys.setdefault(str(kid), {"installed": 0, "primary": 0})
            entry["installed"] += 1
            if answer.get("primary") == kid:
                entry["primary"] += 1
    failed = sorted(name for name, a in answers.items() if not a.get("ok"))
    out: dict[str, Any] = {
        "op": command.op,
        "nodes": {name: dict(answers[name]) for name in sorted(answers)},
        "keys": keys,
        "total": len(answers),
        "failed": failed,
    }
    if command.key is not None:
        out["key"] = key_label(command.key)
    return out


def format_summary(summary: Mapping[str, Any]) -> list[str]:
    """Readable lines: one per node, then one per key id."""
    lines = [f"{'NODE':<24} {'RESULT':<8} {'PRIMARY':<10} KEYS"]
    nodes: Mapping[str, Mapping[str, Any]] = summary.get("nodes", {})
    for name, answer in nodes.items():
        result = "ok" if answer.get("ok") else "FAILED"
        keys: Sequence[str] = answer.get("keys", [])
        detail = " ".join(keys)
        if not answer.get("ok"):
            detail = f"{detail}  ({answer.get('error', 'no answer')})".strip()
        lines.append(f"{name:<24} {result:<8} {answer.get('primary') or '-':<10} {detail}")
    total = summary.get("total", 0)
    for kid, counts in summary.get("keys", {}).items():
        lines.append(
            f"key {kid}: installed on {counts['installed']}/{total} nodes,"
            f" primary on {counts['primary']}"
        )
    return lines
