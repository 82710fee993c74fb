"""The keyring file under --data-dir.

Rules: `keyring.json` holds {"primary": base64, "keys": [base64, ...]}. It is
written atomically (gossip.atomicfile) with mode 0600, so a crash
leaves either the old or the new keyring. Reading is bounded in size and every
field is validated; a bad file raises KeyfileError naming the problem.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from gossip.atomicfile import write_atomic
from gossip.security.keyring import Keyring, KeyringError, decode_key, encode_key

FILENAME = "keyring.json"
MAX_FILE_BYTES = 16 * 1024


class KeyfileError(ValueError):
    pass


def keyring_path(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / FILENAME


def load_keyring(path: str | os.PathLike[str]) -> Keyring | None:
    """The keyring stored at `path`, or None when there is no file."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return None
    if len(raw) > MAX_FILE_BYTES:
        raise KeyfileError(f"{p}: larger than {MAX_FILE_BYTES} bytes")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise KeyfileError(f"{p}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise KeyfileError(f"{p}: expected a JSON object")
    primary, keys = doc.get("primary"), doc.get("keys")
    if not isinstance(primary, str) or not isinstance(keys, list):
        raise KeyfileError(f'{p}: needs "primary" (string) and "keys" (list of strings)')
    if not all(isinstance(k, str) for k in keys):
        raise KeyfileError(f'{p}: "keys" must be a list of strings')
    try:
        return Keyring([decode_key(k) for k in keys], primary=decode_key(primary))
    except KeyringError as exc:
        raise KeyfileError(f"{p}: {exc}") from None


def save_keyring(path: str | os.PathLike[str], keyring: Keyring) -> None:
    keys = [encode_key(k) for k in keyring.all_keys()]
    doc = {"primary": encode_key(keyring.primary), "keys": keys}
    write_atomic(Path(path), (json.dumps(doc, indent=1) + "\n").encode("ascii"), mode=0o600)
