"""Agent settings: flags > GOSSIP_* environment > TOML file > defaults.

Rules: every value is parsed and checked here, before anything starts; a bad
one raises SettingsError(setting, why), which the CLI prints as one line and
exits 2. The TOML file is bounded in size (MAX_CONFIG_BYTES) and may hold the
top-level keys below, a [core] table of core Config overrides, and one table
per service (passed through unchecked to that service). The precedence itself
lives here, for the services too (`layered`): a flag counts as given unless it
is None or an empty list, an environment variable unless it is empty, a file
value when its key is present.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gossip import hostport
from gossip.core.membership.config import Config, ConfigError
from gossip.core.types import Address
from gossip.runtime.seeds import parse_seed

MAX_CONFIG_BYTES = 1024 * 1024
DEFAULT_PORT = 7946
DEFAULT_API_PORT = 7947
LOG_LEVELS = ("debug", "info", "warning", "error")
ENV_PREFIX = "GOSSIP_"
MAX_SEEDS = 256


class SettingsError(ValueError):
    def __init__(self, setting: str, why: str) -> None:
        super().__init__(f"invalid setting {setting}: {why}")
        self.setting = setting
        self.why = why


@dataclass(frozen=True)
class AgentSettings:
    name: str = field(default_factory=socket.gethostname)
    bind: Address = ("0.0.0.0", DEFAULT_PORT)
    advertise: Address | None = None
    """Port 0 stands for the bound port."""
    join: tuple[str, ...] = ()
    """Seeds as given (HOST:PORT, [IPv6]:PORT or srv:NAME); resolved again on every attempt."""
    api: Address | None = ("127.0.0.1", DEFAULT_API_PORT)
    """None disables the control API."""
    api_token: str | None = None
    data_dir: Path | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    profile: str = "lan"
    cluster_name: str = "default"
    log_level: str = "info"
    log_format: str | None = None
    """json | console; None picks console on a terminal, json otherwise."""
    log_file: Path | None = None
    core: Mapping[str, Any] = field(default_factory=dict)
    """Overrides of gossip.core.membership.config.Config fields ([core] table)."""
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Other TOML tables, one per service."""
    config_file: Path | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        if self.api is not None and not _is_loopback(self.api[0]) and not self.api_token:
            raise SettingsError("api_token", "required when the API is not bound to loopback")
        self.core_config()  # raises on bad core values

    def core_config(self) -> Config:
        try:
            return Config.for_profile(self.profile, self.cluster_name, **dict(self.core))
        except ConfigError as exc:
            setting = exc.setting if exc.setting in ("profile", "cluster_name") else None
            raise SettingsError(setting or f"core.{exc.setting}", exc.why) from None

    def section(self, name: str) -> Mapping[str, Any]:
        return self.sections.get(name, {})


# ---- parsing -------------------------------------------------------------------


def parse_hostport(text: str, default_port: int = DEFAULT_PORT) -> Address:
    """HOST:PORT or [IPv6]:PORT (gossip.hostport); an empty host is the IPv4 wildcard."""
    return hostport.parse_hostport(text, default_port)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_name(name: str) -> None:
    if not name or len(name.encode()) > 128 or any(c.isspace() or ord(c) < 32 for c in name):
        raise SettingsError("name", "must be 1..128 bytes without spaces or control characters")


def _parse_tags(items: list[str] | str) -> dict[str, str]:
    parts = items.split(",") if isinstance(items, str) else items
    tags: dict[str, str] = {}
    for item in parts:
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        tags[key.strip()] = value.strip()
    return tags


def _parse_join(items: list[str] | str) -> tuple[str, ...]:
    parts = items.split(",") if isinstance(items, str) else items
    if len(parts) > MAX_SEEDS:
        raise ValueError(f"at most {MAX_SEEDS} seeds")
    seeds = tuple(p.strip() for p in parts if p.strip())
    for seed in seeds:
        parse_seed(seed)
    return seeds


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).lower()
        if text not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return text

    return parse


def _api(value: Any) -> Address | None:
    text = str(value)
    return None if text in ("", "off", "none") else parse_hostport(text, DEFAULT_API_PORT)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "name": _str,
    "bind": lambda v: parse_hostport(_str(v)),
    "advertise": lambda v: parse_hostport(_str(v)),
    "join": _parse_join,
    "api": _api,
    "api_token": _str,
    "data_dir": lambda v: Path(_str(v)),
    "tags": lambda v: _parse_tags(v) if not isinstance(v, dict) else {**v},
    "profile": _choice(("lan", "wan", "local")),
    "cluster_name": _str,
    "log_level": _choice(LOG_LEVELS),
    "log_format": _choice(("json", "console")),
    "log_file": lambda v: Path(_str(v)),
}


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise SettingsError("config", f"cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise SettingsError("config", f"{path} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError("config", f"{path}: {exc}") from None


# ---- precedence ----------------------------------------------------------------


def given_flags(flags: Mapping[str, Any]) -> dict[str, Any]:
    """The flags the user gave: None (argparse's value for an absent flag) and an empty
    list (a repeatable flag never used) are not given."""
    return {name: value for name, value in flags.items() if value is not None and value != []}


def flag_values(args: argparse.Namespace | None, names: Mapping[str, str]) -> dict[str, Any]:
    """setting -> its flag's value, for the flags given; `names` maps each setting to its
    argparse attribute. No flags at all (None: an embedded agent) gives nothing."""
    if args is None:
        return {}
    return given_flags({setting: getattr(args, attr, None) for setting, attr in names.items()})


def env_values(env: Mapping[str, str], names: Mapping[str, str]) -> dict[str, str]:
    """setting -> its environment variable's value, for those set and not empty;
    `names` maps each setting to its variable."""
    found = {setting: env.get(variable) for setting, variable in names.items()}
    return {setting: value for setting, value in found.items() if value}


def layered(*sources: Mapping[str, Any]) -> dict[str, Any]:
    """One value per setting from `sources` in precedence order (flags, environment,
    file): the first source that holds a setting decides it; a setting none holds is
    left out, so its default applies."""
    merged: dict[str, Any] = {}
    for source in reversed(sources):
        merged.update(source)
    return merged


def _parse(setting: str, value: Any) -> Any:
    try:
        return _PARSERS[setting](value)
    except (ValueError, TypeError) as exc:
        raise SettingsError(setting, str(exc)) from None


def _from_file(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    values: dict[str, Any] = {}
    sections: dict[str, Any] = {}
    core: dict[str, Any] = {}
    for key, value in data.items():
        if key == "core":
            if not isinstance(value, dict):
                raise SettingsError("core", "must be a table")
            core = dict(value)
        elif key in _PARSERS:
            if key == "tags" and isinstance(value, dict):
                value = {str(k): str(v) for k, v in value.items()}
            values[key] = _parse(key, value)
        elif isinstance(value, dict):
            sections[key] = value
        else:
            raise SettingsError(key, "unknown setting in the config file")
    return values, core, sections


def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> AgentSettings:
    """Merge the sources; `flags` holds only the flags the user gave (None = not given)."""
    env = os.environ if env is None else env
    if config_file is None and env.get(ENV_PREFIX + "CONFIG"):
        config_file = Path(env[ENV_PREFIX + "CONFIG"])
    from_file: dict[str, Any] = {}
    core: dict[str, Any] = {}
    sections: dict[str, Any] = {}
    if config_file is not None:
        from_file, core, sections = _from_file(read_config_file(config_file))
    variables = {setting: ENV_PREFIX + setting.upper() for setting in _PARSERS}
    from_env = {s: _parse(s, raw) for s, raw in env_values(env, variables).items()}
    from_flags: dict[str, Any] = {}
    for setting, raw in given_flags(flags or {}).items():
        if setting not in _PARSERS:
            raise SettingsError(setting, "unknown setting")
        from_flags[setting] = _parse(setting, raw)
    values = layered(from_flags, from_env, from_file)
    try:
        return AgentSettings(**values, core=core, sections=sections, config_file=config_file)
    except TypeError as exc:  # pragma: no cover - guarded by _PARSERS
        raise SettingsError("config", str(exc)) from None


__all__ = ["AgentSettings", "SettingsError", "load_settings", "parse_hostport"]
