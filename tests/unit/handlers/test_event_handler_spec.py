"""Parsing `--event-handler [FILTER=]CMD` and matching events to handlers."""

from __future__ import annotations

import pytest

from gossip.runtime.handlers.service import handler_settings
from gossip.runtime.handlers.spec import parse_handler
from gossip.runtime.settings import SettingsError


def test_a_filtered_handler_matches_only_its_events() -> None:
    spec = parse_handler("member-join,user:deploy=./hook.sh arg")
    assert spec.command == "./hook.sh arg"
    assert spec.matches("joined", "n1")
    assert spec.matches("user", "deploy")
    assert not spec.matches("user", "restart")
    assert not spec.matches("failed", "n1")


def test_a_handler_without_a_filter_gets_every_event() -> None:
    spec = parse_handler("./hook.sh")
    assert spec.matches("failed", "n1") and spec.matches("user", "anything")


def test_an_equals_sign_inside_a_command_is_not_taken_for_a_filter() -> None:
    spec = parse_handler("FOO=bar ./hook.sh")
    assert spec.command == "FOO=bar ./hook.sh"
    assert spec.matches("left", "n2")


def test_every_user_event_filter_and_member_filters() -> None:
    spec = parse_handler("user,member-failed=cmd")
    assert spec.matches("user", "x") and spec.matches("failed", "n")
    assert not spec.matches("left", "n")


@pytest.mark.parametrize("text", ["", "member-join=", "user=   ", "x" * 5000])
def test_a_handler_without_a_usable_command_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_handler(text)


def test_settings_name_the_bad_entry() -> None:
    with pytest.raises(SettingsError, match=r"handlers\.handler_timeout"):
        handler_settings([], {"handler_timeout": -1})
    with pytest.raises(SettingsError, match=r"handlers\.colour"):
        handler_settings([], {"colour": 1})
    with pytest.raises(SettingsError, match="event_handler"):
        handler_settings(["member-join="], {})
    specs, timeout = handler_settings(["a"], {"event_handlers": ["user=b"], "handler_timeout": 2})
    assert [s.command for s in specs] == ["a", "b"] and timeout == 2.0
