"""Validation of the [ownership] settings: bounded, with errors that name the setting.

Rules: every value from the config file or a flag is checked for type and range before the
service sees it; a bad one raises SettingsError("ownership.<name>", why), which stops the
agent with one clear line (exit status 2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from gossip.runtime.settings import SettingsError

__all__ = [
    "AGENT_PARTITIONS",
    "ENV",
    "FLAGS",
    "MAX_ITEMS",
    "MAX_PARTITIONS",
    "QUORUM_ENV",
    "SECTION",
    "SettingsError",
    "checked_items",
    "command",
    "partition_count",
    "quorum_value",
    "quorum_word",
    "seconds",
]

SECTION = "ownership"
MAX_ITEMS = 100_000
MAX_ITEM_BYTES = 256


FLAGS = {
    "on_acquire": "on_acquire",
    "on_release": "on_release",
    "settle_time": "settle_time",
    "quorum": "ownership_quorum",
}
"""The settings that have a flag (which wins over the environment and the file), and its
argparse attribute; `--item` adds to the file's items instead."""
QUORUM_ENV = "GOSSIP_OWNERSHIP_QUORUM"
ENV = {"quorum": QUORUM_ENV}
"""The settings read from the environment, and their variables."""


def checked_items(items: Any, setting: str) -> list[str]:
    """A list of 1..MAX_ITEM_BYTES-byte names, at most MAX_ITEMS, duplicates dropped."""
    if isinstance(items, str) or not isinstance(items, Sequence | frozenset | set):
        raise SettingsError(f"{SECTION}.{setting}", "must be a list of item names")
    if len(items) > MAX_ITEMS:
        raise SettingsError(f"{SECTION}.{setting}", f"at most {MAX_ITEMS} items")
    for item in items:
        if not isinstance(item, str) or not item or len(item.encode()) > MAX_ITEM_BYTES:
            raise SettingsError(
                f"{SECTION}.{setting}", f"item names are 1..{MAX_ITEM_BYTES}-byte strings"
            )
    return list(dict.fromkeys(items))


def command(value: Any) -> str | None:
    """A handler command string, or None when unset."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SettingsError(f"{SECTION}.on_acquire/on_release", "must be a command string")
    return value


def seconds(value: Any, setting: str, default: float) -> float:
    """A duration in seconds, 0..86400; `default` when unset."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SettingsError(f"{SECTION}.{setting}", "must be a number of seconds")
    if not math.isfinite(value) or not 0 <= value <= 86_400:
        raise SettingsError(f"{SECTION}.{setting}", "must be between 0 and 86400 seconds")
    return float(value)


AGENT_PARTITIONS = 1 << 16
"""max/mean load 1.10 at 100 members over 1M keys (2^20: 1.04), ~2.5 MB; docs/ownership.md."""
MAX_PARTITIONS = 1 << 22


def partition_count(raw: object) -> int:
    """`[ownership] partitions`: a power of two from 2^8 to 2^22 (default AGENT_PARTITIONS)."""
    if raw is None:
        return AGENT_PARTITIONS
    if type(raw) is not int or raw < 256 or raw > MAX_PARTITIONS or raw & (raw - 1):
        raise SettingsError(f"{SECTION}.partitions", "must be a power of two from 256 to 2^22")
    return raw


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def quorum_word(word: str) -> bool:
    """GOSSIP_OWNERSHIP_QUORUM: 1/true/yes/on or 0/false/no/off, any case."""
    word = word.strip().lower()
    if word not in _TRUE + _FALSE:
        raise SettingsError(QUORUM_ENV, "must be 1/true/yes/on or 0/false/no/off")
    return word in _TRUE


def quorum_value(value: Any) -> bool:
    """The chosen quorum setting (a flag's or the environment's boolean, or the TOML
    value, which must be a boolean); False when unset."""
    if value is not None and not isinstance(value, bool):
        raise SettingsError(f"{SECTION}.quorum", "must be true or false")
    return bool(value)
