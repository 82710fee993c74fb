"""Settings precedence and validation: flags > env > file > defaults."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from gossip.runtime.settings import (
    SettingsError,
    env_values,
    flag_values,
    given_flags,
    layered,
    load_settings,
)


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_flags_beat_environment_which_beats_the_file(tmp_path: Path) -> None:
    cfg = _file(tmp_path, 'name = "from-file"\nbind = "127.0.0.1:1000"\nlog_level = "debug"\n')
    env = {"GOSSIP_NAME": "from-env", "GOSSIP_BIND": "127.0.0.1:2000"}
    s = load_settings({"name": "from-flag"}, env, cfg)
    assert s.name == "from-flag"
    assert s.bind == ("127.0.0.1", 2000)
    assert s.log_level == "debug"
    assert s.api == ("127.0.0.1", 7947)


def test_the_first_source_that_holds_a_setting_decides_it() -> None:
    flags = {"a": 1}
    env = {"a": 2, "b": 2}
    file = {"a": 3, "b": 3, "c": 3}
    assert layered(flags, env, file) == {"a": 1, "b": 2, "c": 3}
    assert layered() == {}


def test_absent_flags_and_empty_variables_are_not_given() -> None:
    assert given_flags({"a": None, "b": [], "c": "", "d": 0, "e": False}) == {
        "c": "",
        "d": 0,
        "e": False,
    }
    args = argparse.Namespace(kv_replicas="2", kv_sync_interval=None)
    names = {"replicas": "kv_replicas", "sync_interval": "kv_sync_interval", "x": "missing"}
    assert flag_values(args, names) == {"replicas": "2"}
    assert flag_values(None, names) == {}
    env = {"GOSSIP_A": "1", "GOSSIP_B": ""}
    assert env_values(env, {"a": "GOSSIP_A", "b": "GOSSIP_B", "c": "GOSSIP_C"}) == {"a": "1"}


def test_defaults_apply_when_nothing_is_given() -> None:
    s = load_settings({}, {})
    assert s.bind == ("0.0.0.0", 7946)
    assert s.profile == "lan"
    assert s.join == ()
    assert s.core_config().probe_interval == 1.0


def test_lists_and_tags_come_from_repeated_flags_or_comma_lists() -> None:
    s = load_settings({"join": ["a:1", "b:2"], "tags": ["role=db", "dc=x"]}, {})
    assert s.join == ("a:1", "b:2")
    assert dict(s.tags) == {"role": "db", "dc": "x"}
    s = load_settings({}, {"GOSSIP_JOIN": "a:1,b", "GOSSIP_TAGS": "k=v"})
    assert s.join == ("a:1", "b")
    assert dict(s.tags) == {"k": "v"}


def test_core_overrides_and_service_sections_come_from_the_file(tmp_path: Path) -> None:
    cfg = _file(tmp_path, "[core]\nprobe_interval = 0.5\n[store]\nreplicas = 3\n")
    s = load_settings({"profile": "local"}, {}, cfg)
    assert s.core_config().probe_interval == 0.5
    assert s.section("store") == {"replicas": 3}
    assert s.section("absent") == {}


@pytest.mark.parametrize(
    ("flags", "env", "setting"),
    [
        ({"bind": "127.0.0.1:99999"}, {}, "bind"),
        ({"log_level": "loud"}, {}, "log_level"),
        ({}, {"GOSSIP_PROFILE": "moon"}, "profile"),
        ({"tags": ["novalue"]}, {}, "tags"),
        ({"name": "has space"}, {}, "name"),
        ({"api": "0.0.0.0:7947"}, {}, "api_token"),
        ({"join": ["host:port"]}, {}, "join"),
        ({"join": ["srv:not a name"]}, {}, "join"),
        ({}, {"GOSSIP_JOIN": "fd00::1:7946"}, "join"),
        ({"bind": "::1:7946"}, {}, "bind"),
        ({"advertise": "[::1"}, {}, "advertise"),
        ({"api": "[::]:7947"}, {}, "api_token"),
    ],
)
def test_invalid_settings_name_the_setting(
    flags: dict[str, object], env: dict[str, str], setting: str
) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(flags, env)
    assert info.value.setting == setting
    assert str(info.value).startswith(f"invalid setting {setting}:")


def test_bad_core_values_and_bad_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({}, {}, _file(tmp_path, "[core]\nprobe_timeout = -1\n"))
    assert info.value.setting == "core.probe_timeout"
    with pytest.raises(SettingsError) as info:
        load_settings({}, {}, _file(tmp_path, "name = [unclosed\n"))
    assert info.value.setting == "config"
    with pytest.raises(SettingsError) as info:
        load_settings({}, {}, _file(tmp_path, "colour = 1\n"))
    assert info.value.setting == "colour"
    with pytest.raises(SettingsError):
        load_settings({}, {}, tmp_path / "missing.toml")


def test_a_non_loopback_api_is_accepted_with_a_token() -> None:
    s = load_settings({"api": "0.0.0.0:8000", "api_token": "t"}, {})
    assert s.api == ("0.0.0.0", 8000)
    assert load_settings({"api": "off"}, {}).api is None
