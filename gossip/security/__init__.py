"""Encryption and authentication of gossip traffic: the keyring, the AES-GCM
sealer that the runtime applies to every datagram and stream frame, and the
keyring file under --data-dir."""

from gossip.security.keyring import Keyring, KeyringError, decode_key, encode_key, generate_key
from gossip.security.sealer import OVERHEAD, AesGcmSealer, Policy, SealError

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
