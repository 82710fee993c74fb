"""The quorum option's sources and the token-note wire format."""

from __future__ import annotations

import argparse

import cbor2
import pytest

from gossip.runtime.ownership.notes import NoteError, decode_notes, encode_notes
from gossip.runtime.ownership.service import add_arguments, service_from_settings
from gossip.runtime.settings import SettingsError


def flags(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize(
    ("argv", "env", "section", "quorum"),
    [
        ((), {}, {}, False),
        ((), {}, {"quorum": True}, True),
        ((), {"GOSSIP_OWNERSHIP_QUORUM": "0"}, {"quorum": True}, False),
        ((), {"GOSSIP_OWNERSHIP_QUORUM": " Yes "}, {}, True),
        ((), {"GOSSIP_OWNERSHIP_QUORUM": ""}, {"quorum": True}, True),
        (("--ownership-quorum",), {"GOSSIP_OWNERSHIP_QUORUM": "off"}, {"quorum": False}, True),
    ],
)
def test_the_quorum_option_comes_from_flag_then_environment_then_file(
    argv: tuple[str, ...], env: dict[str, str], section: dict[str, object], quorum: bool
) -> None:
    svc = service_from_settings(section, flags(*argv), env)
    assert svc._quorum is quorum


@pytest.mark.parametrize(
    ("env", "section", "setting"),
    [
        ({"GOSSIP_OWNERSHIP_QUORUM": "maybe"}, {}, "GOSSIP_OWNERSHIP_QUORUM"),
        ({}, {"quorum": "yes"}, "ownership.quorum"),
        ({}, {"quorum": 1}, "ownership.quorum"),
    ],
)
def test_a_bad_quorum_value_names_its_source(
    env: dict[str, str], section: dict[str, object], setting: str
) -> None:
    with pytest.raises(SettingsError) as err:
        service_from_settings(section, None, env)
    assert err.value.setting == setting


def test_notes_round_trip_and_garbage_is_refused_whole() -> None:
    pairs = [("job-1", 7), ("job-2", 2**63 - 1)]
    assert decode_notes(encode_notes(pairs)) == pairs
    assert decode_notes(encode_notes([])) == []
    bad = [
        b"\xff",
        cbor2.dumps({"job": 1}),
        cbor2.dumps([["job", 0]]),
        cbor2.dumps([["job", 2**63]]),
        cbor2.dumps([["job", True]]),
        cbor2.dumps([["", 1]]),
        cbor2.dumps([["x" * 300, 1]]),
        cbor2.dumps([["job", 1, 2]]),
        cbor2.dumps([["job", 1]] * 1001),
    ]
    for body in bad:
        with pytest.raises(NoteError):
            decode_notes(body)
