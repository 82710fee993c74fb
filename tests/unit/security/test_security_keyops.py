"""Key commands: parsing untrusted input, applying them, and the per-node summary."""

from __future__ import annotations

import pytest

from gossip.security.keyops import (
    Command,
    CommandError,
    apply_command,
    decode_command,
    format_summary,
    summarize,
)
from gossip.security.keyring import Keyring, encode_key, key_label

K1, K2 = bytes([1]) * 32, bytes([2]) * 32


def test_commands_round_trip_through_json() -> None:
    for command in (Command("list"), Command("install", K2), Command("use", K1)):
        assert decode_command(command.encode()) == command


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"[]", "JSON object"),
        (b"{", "not valid JSON"),
        (b'{"op": "drop"}', "op must be"),
        (b'{"op": "use"}', "needs"),
        (b'{"op": "use", "key": "abc"}', "base64|bytes"),
        (b"x" * 5000, "too large"),
    ],
)
def test_bad_commands_are_refused_with_a_reason(raw: bytes, why: str) -> None:
    with pytest.raises(CommandError, match=why):
        decode_command(raw)


def test_answers_name_keys_by_id_and_never_by_value() -> None:
    ring = Keyring([K1])
    answer, changed = apply_command(ring, Command("install", K2))
    assert changed and answer["ok"]
    assert answer["keys"] == [key_label(K1), key_label(K2)]
    assert encode_key(K2) not in repr(answer)


def test_refused_operations_answer_an_error_and_change_nothing() -> None:
    ring = Keyring([K1])
    answer, changed = apply_command(ring, Command("remove", K1))
    assert not changed and not answer["ok"]
    assert "primary" in answer["error"]
    assert ring.all_keys() == [K1]


def test_a_plaintext_node_answers_that_encryption_is_off() -> None:
    assert apply_command(None, Command("list"))[0] == {"ok": True, "primary": None, "keys": []}
    answer, _ = apply_command(None, Command("install", K1))
    assert answer == {"ok": False, "error": "encryption is not enabled on this node"}


def test_summary_counts_which_nodes_hold_which_key() -> None:
    a, b = Keyring([K1, K2]), Keyring([K1])
    answers = {
        "a": apply_command(a, Command("list"))[0],
        "b": apply_command(b, Command("list"))[0],
        "c": {"ok": False, "error": "no answer: timeout"},
    }
    summary = summarize(Command("list"), answers)
    assert summary["keys"][key_label(K1)] == {"installed": 2, "primary": 2}
    assert summary["keys"][key_label(K2)] == {"installed": 1, "primary": 0}
    assert summary["failed"] == ["c"]
    text = "\n".join(format_summary(summary))
    assert "no answer: timeout" in text
    assert f"key {key_label(K2)}: installed on 1/3 nodes, primary on 0" in text
