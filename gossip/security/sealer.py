"""AES-GCM sealing of every datagram and stream frame.

Rules:
- Sealed format: MAGIC(1) | key id(4) | salt(16) | counter(8) | ciphertext | tag(16).
  MAGIC is 0x1c: no plaintext layout of the agent starts with it (datagram
  demux 0/1, channel-name length 1..24, response status 0..2; a reserved CBOR
  byte besides), so while encryption is rolled out sealed and plaintext input
  are never mistaken for each other.
- The sender encrypts with a subkey HKDF-SHA256(primary key, salt) where the
  salt is 16 random bytes drawn at start-up (and again on every key change and
  every 2**32 packets); the 96-bit nonce is a counter that starts at zero for
  each subkey. A (subkey, nonce) pair therefore never repeats unless two salts
  collide (2**-128 per pair of salts). See docs/security.md.
- Associated data is the 29-byte header plus the cluster name, so a packet
  cannot be moved to another cluster or have its header altered.
- `open` never returns partial data: it returns the plaintext or raises
  SealError with a stable reason token (counted in `rejected`). Callers drop
  rejected input without replying.
- Replays are refused per sender by a sliding counter window; subkeys and
  windows are cached only after a packet authenticates, so unauthenticated
  input cannot evict them.
- A peer heard using an older key that is still installed is answered with
  that key, so a node that missed a rotation can rejoin while any of its keys
  remains installed (everything else is sealed with the primary key).
"""

from __future__ import annotations

import secrets
import struct
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gossip.core.types import Address
from gossip.security.keyring import KEY_ID_SIZE, Keyring, key_id
from gossip.security.replay import DEFAULT_WINDOW, ReplayWindow
from gossip.security.sealing import SealRejected

MAGIC = 0x1C
SALT_SIZE = 16
COUNTER_SIZE = 8
TAG_SIZE = 16
HEADER_SIZE = 1 + KEY_ID_SIZE + SALT_SIZE + COUNTER_SIZE
OVERHEAD = HEADER_SIZE + TAG_SIZE
"""Bytes a sealed packet adds; the core must reserve them (cfg.packet_overhead)."""

MAX_PACKETS_PER_SALT = 1 << 32
"""Draw a fresh salt (hence a fresh subkey) well before any AES-GCM usage limit."""
SENDER_CACHE = 1024
"""Authenticated senders whose subkey and replay window are kept, and peers
whose older key is remembered."""

_HKDF_INFO = b"gossip aes-gcm subkey v1"
_NONCE_PREFIX = b"\x00\x00\x00\x00"


class SealError(SealRejected):
    """Input refused by the sealer; `reason` is a short stable token."""


@dataclass(frozen=True, slots=True)
class Policy:
    """The rollout settings. Roll encryption out in three steps: install the
    key everywhere with both False, then set encrypt_outgoing everywhere, then
    require_incoming everywhere."""

    encrypt_outgoing: bool = True
    """Seal what we send (False: send plaintext, still open sealed input)."""
    require_incoming: bool = True
    """Refuse plaintext input (False: accept plaintext beside sealed input)."""


def derive_subkey(key: bytes, salt: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=len(key), salt=salt, info=_HKDF_INFO)
    return hkdf.derive(key)


class _Sender:
    """Our own encryption state for one primary key and one salt."""

    __slots__ = ("aead", "counter", "header_prefix")

    def __init__(self, key: bytes, salt: bytes) -> None:
        self.aead = AESGCM(derive_subkey(key, salt))
        self.header_prefix = bytes([MAGIC]) + key_id(key) + salt
        self.counter = 0


class _Peer:
    """A remote sender we have authenticated: its subkey and replay window."""

    __slots__ = ("aead", "window")

    def __init__(self, aead: AESGCM, window_size: int) -> None:
        self.aead = aead
        self.window = ReplayWindow(window_size) if window_size > 0 else None


class AesGcmSealer:
    """Seals and opens packets with a keyring, bound to one cluster name."""

    overhead = OVERHEAD

    def __init__(
        self,
        keyring: Keyring,
        cluster_name: str,
        policy: Policy | None = None,
        *,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
        replay_window: int = DEFAULT_WINDOW,
    ) -> None:
        """`replay_window=0` turns replay filtering off (benchmarks only)."""
        self.keyring = keyring
        self.policy = policy or Policy()
        self._label = b"\x00" + cluster_name.encode("utf-8")
        self._random_bytes = random_bytes
        self._replay_window = replay_window
        self._senders: dict[bytes, _Sender] = {}
        self._senders_version = keyring.version
        self._peer_keys: OrderedDict[Address, bytes] = OrderedDict()
        """Peers last heard sealing with a key other than our primary."""
        self._sealed_from: OrderedDict[Address, bool] = OrderedDict()
        """Whether the last input opened from each peer was sealed (authenticated)."""
        self._peers: OrderedDict[tuple[bytes, bytes], _Peer] = OrderedDict()
        self._peers_version = keyring.version
        self.rejected: Counter[str] = Counter()
        """Refused input by reason: not_encrypted, truncated, unknown_key,
        decrypt_failed, replayed, stale."""
        self.sealed = 0
        self.opened = 0

    # ---- sending -------------------------------------------------------------

    def _key_for(self, peer: Address | None) -> bytes:
        key = self._peer_keys.get(peer) if peer is not None else None
        if key is not None and key in self.keyring:
            return key
        return self.keyring.primary

    def _sender_for(self, key: bytes) -> _Sender:
        if self._senders_version != self.keyring.version:
            self._senders.clear()  # any key change draws fresh salts
            self._senders_version = self.keyring.version
        sender = self._senders.get(key)
        if sender is None or sender.counter >= MAX_PACKETS_PER_SALT:
            sender = _Sender(key, self._random_bytes(SALT_SIZE))
            self._senders[key] = sender
        return sender

    def seal(self, data: bytes, peer: Address | None = None) -> bytes:
        if not self.policy.encrypt_outgoing:
            return data
        sender = self._sender_for(self._key_for(peer))
        counter = sender.counter
        sender.counter = counter + 1
        packed = struct.pack(">Q", counter)
        header = sender.header_prefix + packed
        self.sealed += 1
        return header + sender.aead.encrypt(_NONCE_PREFIX + packed, data, header + self._label)

    # ---- receiving -----------------------------------------------------------

    def _reject(self, reason: str) -> SealError:
        self.rejected[reason] += 1
        return SealError(reason)

    def authenticated(self, peer: Address) -> bool:
        """Whether the last input opened from `peer` was sealed with one of our
        keys (False after plaintext accepted during a rollout). Handlers that
        change security state (key commands) ask this for their request's source."""
        return self._sealed_from.get(peer, False)

    def _note_source(self, peer: Address | None, sealed: bool) -> None:
        if peer is None:
            return
        self._sealed_from[peer] = sealed
        self._sealed_from.move_to_end(peer)
        while len(self._sealed_from) > SENDER_CACHE:
            self._sealed_from.popitem(last=False)

    def open(self, data: bytes, peer: Address | None = None) -> bytes:
        if not data or data[0] != MAGIC:
            if self.policy.require_incoming:
                raise self._reject("not_encrypted")
            self._note_source(peer, sealed=False)
            return data
        if len(data) < OVERHEAD:
            raise self._reject("truncated")
        kid = data[1 : 1 + KEY_ID_SIZE]
        candidates = self.keyring.lookup(kid)
        if not candidates:
            raise self._reject("unknown_key")
        if self._peers_version != self.keyring.version:
            self._peers.clear()  # a removed key must stop working at once
            self._peers_version = self.keyring.version
        salt = data[1 + KEY_ID_SIZE : 1 + KEY_ID_SIZE + SALT_SIZE]
        packed = data[HEADER_SIZE - COUNTER_SIZE : HEADER_SIZE]
        (counter,) = struct.unpack(">Q", packed)
        header = data[:HEADER_SIZE]
        nonce = _NONCE_PREFIX + packed
        ad = header + self._label
        body = data[HEADER_SIZE:]
        for key in candidates:
            cache_key = (key, salt)
            known = self._peers.get(cache_key)
            if known is not None:
                refusal = known.window.check(counter) if known.window else None
                if refusal is not None:
                    raise self._reject(refusal)
                aead = known.aead
            else:
                aead = AESGCM(derive_subkey(key, salt))
            try:
                plain = aead.decrypt(nonce, body, ad)
            except InvalidTag:
                continue
            if known is None:
                known = self._remember(cache_key, aead)
            else:
                self._peers.move_to_end(cache_key)
            if known.window:
                known.window.record(counter)
            if peer is not None:
                self._note_key(peer, key)
            self._note_source(peer, sealed=True)
            self.opened += 1
            return plain
        raise self._reject("decrypt_failed")

    def _note_key(self, source: Address, key: bytes) -> None:
        if key == self.keyring.primary:
            self._peer_keys.pop(source, None)
            return
        self._peer_keys[source] = key
        self._peer_keys.move_to_end(source)
        while len(self._peer_keys) > SENDER_CACHE:
            self._peer_keys.popitem(last=False)

    def _remember(self, cache_key: tuple[bytes, bytes], aead: AESGCM) -> _Peer:
        peer = _Peer(aead, self._replay_window)
        self._peers[cache_key] = peer
        while len(self._peers) > SENDER_CACHE:
            self._peers.popitem(last=False)
        return peer
