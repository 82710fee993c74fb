"""Encryption and authentication of gossip traffic: the keyring, the AES-GCM
sealer that the runtime applies to every datagram and stream frame, and the
keyring file under --data-dir.

The sealer (and with it `cryptography`, about 6 MiB resident) loads on first
use of one of its names, so an agent without a keyring never imports it."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from gossip.security.keyring import Keyring, KeyringError, decode_key, encode_key, generate_key

if TYPE_CHECKING:
    from gossip.security.sealer import OVERHEAD, AesGcmSealer, Policy, SealError

_FROM_SEALER = frozenset({"OVERHEAD", "AesGcmSealer", "Policy", "SealError"})


def __getattr__(name: str) -> object:
    if name in _FROM_SEALER:
        return getattr(importlib.import_module("gossip.security.sealer"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "OVERHEAD",
    "AesGcmSealer",
    "Keyring",
    "KeyringError",
    "Policy",
    "SealError",
    "decode_key",
    "encode_key",
    "generate_key",
]
