"""AES-GCM sealing: round trips, rotation, rollout policy and every refusal reason."""

from __future__ import annotations

import itertools

import pytest

from gossip.security.keyring import Keyring, key_id
from gossip.security.sealer import (
    HEADER_SIZE,
    MAGIC,
    MAX_PACKETS_PER_SALT,
    OVERHEAD,
    AesGcmSealer,
    Policy,
    SealError,
)

K1, K2 = bytes([1]) * 32, bytes([2]) * 16


def pair(
    a_keys: list[bytes], b_keys: list[bytes], cluster: str = "c", policy: Policy | None = None
) -> tuple[AesGcmSealer, AesGcmSealer]:
    return (
        AesGcmSealer(Keyring(a_keys), cluster, policy),
        AesGcmSealer(Keyring(b_keys), cluster, policy),
    )


def refusal(sealer: AesGcmSealer, data: bytes) -> str:
    with pytest.raises(SealError) as info:
        sealer.open(data)
    return info.value.reason


def test_sealed_packet_opens_on_a_peer_with_the_key_and_hides_the_payload() -> None:
    a, b = pair([K1], [K1])
    sealed = a.seal(b"hello gossip")
    assert len(sealed) == len(b"hello gossip") + OVERHEAD
    assert sealed[0] == MAGIC
    assert b"hello" not in sealed
    assert b.open(sealed) == b"hello gossip"


def test_each_packet_uses_a_fresh_nonce() -> None:
    a, _ = pair([K1], [K1])
    headers = {a.seal(b"same")[:HEADER_SIZE] for _ in range(100)}
    assert len(headers) == 100


def test_two_processes_with_one_key_draw_different_salts() -> None:
    a, b = pair([K1], [K1])
    assert a.seal(b"x")[5:21] != b.seal(b"x")[5:21]


def test_different_keys_never_open_each_other() -> None:
    a, b = pair([K1], [K2])
    assert refusal(b, a.seal(b"x")) == "unknown_key"
    assert b.rejected["unknown_key"] == 1


def test_cluster_name_is_bound_as_associated_data() -> None:
    a = AesGcmSealer(Keyring([K1]), "blue")
    b = AesGcmSealer(Keyring([K1]), "green")
    assert refusal(b, a.seal(b"x")) == "decrypt_failed"


@pytest.mark.parametrize("index", [0, 3, 10, 27, HEADER_SIZE + 1, -1])
def test_any_flipped_bit_is_refused(index: int) -> None:
    a, b = pair([K1], [K1])
    sealed = bytearray(a.seal(b"payload"))
    sealed[index] ^= 0x01
    assert refusal(b, bytes(sealed)) in {"decrypt_failed", "unknown_key", "not_encrypted"}


def test_truncated_and_empty_input_are_refused() -> None:
    a, b = pair([K1], [K1])
    assert refusal(b, a.seal(b"")[: OVERHEAD - 1]) == "truncated"
    assert refusal(b, b"") == "not_encrypted"


def test_replayed_packet_is_refused_but_reordering_is_fine() -> None:
    a, b = pair([K1], [K1])
    first, second = a.seal(b"1"), a.seal(b"2")
    assert b.open(second) == b"2"
    assert b.open(first) == b"1"
    assert refusal(b, first) == "replayed"
    assert b.opened == 2


def test_stale_counter_is_refused() -> None:
    a = AesGcmSealer(Keyring([K1]), "c")
    b = AesGcmSealer(Keyring([K1]), "c", replay_window=4)
    old = a.seal(b"old")
    for _ in range(5):
        b.open(a.seal(b"new"))
    assert refusal(b, old) == "stale"


def test_rotation_install_use_remove_keeps_traffic_flowing() -> None:
    a, b = pair([K1], [K1])
    for ring in (a.keyring, b.keyring):
        ring.install(K2)
    assert b.open(a.seal(b"1")) == b"1"
    a.keyring.use(K2)  # a switches first: b still opens with the installed K2
    assert b.open(a.seal(b"2")) == b"2"
    assert a.open(b.seal(b"3")) == b"3"  # and a still opens b's K1 traffic
    b.keyring.use(K2)
    a.keyring.remove(K1)
    b.keyring.remove(K1)
    assert b.open(a.seal(b"4")) == b"4"


def test_removed_key_stops_working_at_once_even_for_a_known_sender() -> None:
    a, b = pair([K1], [K2, K1])
    assert b.open(a.seal(b"1")) == b"1"
    b.keyring.remove(K1)
    assert refusal(b, a.seal(b"2")) == "unknown_key"


def test_plaintext_is_refused_when_required_and_accepted_during_rollout() -> None:
    strict = AesGcmSealer(Keyring([K1]), "c")
    assert refusal(strict, b"\xa1plain cbor") == "not_encrypted"
    lenient = AesGcmSealer(Keyring([K1]), "c", Policy(require_incoming=False))
    assert lenient.open(b"\xa1plain cbor") == b"\xa1plain cbor"
    # a sealed packet is still authenticated: a forged one is not let through as plaintext
    forged = bytes([MAGIC]) + b"\x00" * (OVERHEAD + 4)
    assert refusal(lenient, forged) == "unknown_key"


def test_rollout_sequence_never_loses_a_packet() -> None:
    steps = [Policy(False, False), Policy(True, False), Policy(True, True)]
    # Each node moves to the next step at its own time; any mix of adjacent
    # steps must interoperate.
    for step in range(len(steps) - 1):
        for sender_p, receiver_p in itertools.product(steps[step : step + 2], repeat=2):
            a = AesGcmSealer(Keyring([K1]), "c", sender_p)
            b = AesGcmSealer(Keyring([K1]), "c", receiver_p)
            assert b.open(a.seal(b"\xa1x")) == b"\xa1x", (sender_p, receiver_p)


def test_salt_is_redrawn_before_the_counter_limit() -> None:
    a, b = pair([K1], [K1])
    first = a.seal(b"x")
    a._senders[K1].counter = MAX_PACKETS_PER_SALT
    second = a.seal(b"y")
    assert first[5:21] != second[5:21]
    assert second[21:29] == b"\x00" * 8
    assert b.open(second) == b"y"


def test_key_change_redraws_the_salt() -> None:
    draws: list[int] = []

    def counting_random(n: int) -> bytes:
        draws.append(n)
        return bytes([len(draws)]) * n

    a = AesGcmSealer(Keyring([K1]), "c", random_bytes=counting_random)
    a.seal(b"x")
    a.seal(b"x")
    a.keyring.install(K2)
    a.seal(b"x")
    assert len(draws) == 2


def test_a_peer_still_on_an_older_installed_key_is_answered_with_that_key() -> None:
    # `old` missed a rotation: it only has K1; `new` encrypts with K2 but keeps K1.
    old = AesGcmSealer(Keyring([K1]), "c")
    new = AesGcmSealer(Keyring([K2, K1]), "c")
    old_addr, other_addr = ("10.0.0.4", 7946), ("10.0.0.5", 7946)
    assert refusal(old, new.seal(b"before", old_addr)) == "unknown_key"
    assert new.open(old.seal(b"ping"), old_addr) == b"ping"
    assert old.open(new.seal(b"ack", old_addr)) == b"ack"
    # everybody else still gets the primary key
    assert refusal(old, new.seal(b"x", other_addr)) == "unknown_key"
    # once the old key is removed, the peer gets the primary key again
    new.keyring.remove(K1)
    assert refusal(old, new.seal(b"after", old_addr)) == "unknown_key"


def test_a_peer_that_moves_to_the_primary_key_is_answered_with_it() -> None:
    a = AesGcmSealer(Keyring([K2, K1]), "c")
    b = AesGcmSealer(Keyring([K1, K2]), "c")
    b_addr = ("10.0.0.2", 1)
    a.open(b.seal(b"on K1"), b_addr)
    assert a.seal(b"x", b_addr)[1:5] == key_id(K1)
    b.keyring.use(K2)
    a.open(b.seal(b"on K2"), b_addr)
    assert a.seal(b"z", b_addr)[1:5] == key_id(K2)


def test_authenticated_tells_whether_a_peers_last_input_was_sealed() -> None:
    a = AesGcmSealer(Keyring([K1]), "c")
    lenient = AesGcmSealer(Keyring([K1]), "c", Policy(require_incoming=False))
    peer = ("10.0.0.3", 5555)
    assert not lenient.authenticated(peer)
    lenient.open(a.seal(b"x"), peer)
    assert lenient.authenticated(peer)
    lenient.open(b"\xa1plain", peer)
    assert not lenient.authenticated(peer)


def test_no_plaintext_layout_of_the_agent_can_start_with_the_sealed_magic_byte() -> None:
    from gossip.runtime import framing

    first_bytes = {framing.DGRAM_MEMBER, framing.DGRAM_CHANNEL}
    first_bytes |= {framing.STATUS_OK, framing.STATUS_NO_REPLY, framing.STATUS_ERROR}
    first_bytes |= set(range(1, framing.MAX_CHANNEL_LEN + 1))  # request: channel length
    assert MAGIC not in first_bytes
