"""Every membership tunable in one frozen, validated value.

Rules: a Config is immutable and always valid; `Config.for_profile` starts from
one of memberlist's profiles (lan, wan, local) and `replace` returns a checked
copy. A bad value raises ConfigError(setting, why) naming the setting, so a
config file error can be reported precisely. Times are in seconds.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

MAX_UDP_PAYLOAD = 65507
"""The largest payload of one IPv4 UDP datagram."""
PROTOCOL_VERSIONS = (1, 2)
"""The wire versions this build can speak. Version 2 differs from 1 only in
its ping, which carries the sender's version too: it exists to prove that a
cluster upgrades from one version to the next without failures (versions.py)."""


class ConfigError(ValueError):
    """A setting has a bad value (or does not exist)."""

    def __init__(self, setting: str, why: str) -> None:
        super().__init__(f"{setting}: {why}")
        self.setting = setting
        self.why = why


@dataclass(frozen=True, slots=True)
class Config:
    cluster_name: str = "default"
    """Carried in every packet; packets from another cluster are rejected."""
    profile: str = "lan"

    # probing (SWIM)
    probe_interval: float = 1.0
    probe_timeout: float = 0.5
    indirect_checks: int = 3
    tcp_fallback_ping: bool = True
    """Ping the target over a stream alongside the indirect probes."""

    # suspicion (Lifeguard)
    suspicion_mult: int = 4
    suspicion_max_timeout_mult: int = 6
    max_health: int = 8
    """The local health score ranges over 0..max_health; probe interval and
    timeout are scaled by (health + 1)."""
    stall_awareness: bool = True
    """An event-loop stall the shell reports (Node.loop_lagged) raises the
    health score and restarts the probes in flight; off, stalls are ignored."""

    # dissemination
    gossip_interval: float = 0.2
    gossip_nodes: int = 3
    gossip_to_the_dead_time: float = 30.0
    retransmit_mult: int = 4
    udp_buffer_size: int = 1400
    """No datagram the core builds is larger than this (including overhead)."""
    packet_overhead: int = 0
    """Bytes reserved per datagram for the shell's encryption."""

    # push-pull state sync and streams
    push_pull_interval: float = 30.0
    push_pull_scale_threshold: int = 32
    """Above this many members the push-pull interval grows with log2(N)."""
    stream_timeout: float = 10.0
    max_stream_bytes: int = 8 * 1024 * 1024

    # leaving, reaping, reconnecting
    leave_timeout: float = 5.0
    dead_reap_time: float = 300.0
    """How long dead/left members stay in the table (and are gossiped about)."""
    reconnect_interval: float = 30.0
    reconnect_max_backoff: float = 600.0
    reconnect_timeout: float = 3600.0
    """How long a dead member's address is remembered for reconnect attempts."""

    # metadata limits
    max_tags_bytes: int = 512
    """Encoded size limit of a node's tags (CBOR map of str to str)."""
    max_name_bytes: int = 128

    # network coordinates (coordinates.py)
    coordinates: bool = False
    """Send this node's Vivaldi coordinate with every ack and learn one from
    every direct probe. Every member must run a build that knows the
    coordinate message before it is turned on (an older one refuses it)."""

    # protocol versions (versions.py)
    protocol_min: int = 1
    protocol_max: int = 1
    """This node decodes every wire version in [protocol_min, protocol_max]
    and speaks the highest one every live member's range includes."""

    # user events (userevents.py)
    max_event_bytes: int = 512
    """Limit on a user event's name plus payload; a larger one is refused."""
    event_budget: int = 640
    """Bytes of each datagram that user events may fill, after the membership
    updates (which always go first)."""
    event_retransmit_mult: int = 6
    """As retransmit_mult, for user events and queries: a little above the
    membership's 4, since an event has no later probe to make up for a lost
    copy (push-pull repairs one, but only at its next exchange)."""
    event_window: int = 512
    """Lamport times of user events remembered: duplicates inside the window
    are dropped, events older than it are refused as replays."""

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def for_profile(
        cls, profile: str = "lan", cluster_name: str = "default", **overrides: Any
    ) -> Config:
        """A config for `profile` (lan | wan | local) with `overrides` applied."""
        if profile not in PROFILES:
            raise ConfigError("profile", f"unknown profile {profile!r} (lan, wan, local)")
        values = dict(PROFILES[profile])
        values.update(overrides)
        _check_names(values)
        return cls(cluster_name=cluster_name, profile=profile, **values)

    def replace(self, **changes: Any) -> Config:
        """A validated copy with `changes` applied."""
        _check_names(changes)
        return dataclasses.replace(self, **changes)

    # ---- derived values ---------------------------------------------------

    @property
    def packet_budget(self) -> int:
        """Bytes available to the encoded packet before the shell's overhead."""
        return self.udp_buffer_size - self.packet_overhead

    def retransmit_limit(self, n_members: int) -> int:
        """How many times one update is sent: RetransmitMult x ceil(log10(N + 1)),
        but never fewer than gossip_nodes, so that a node's first gossip round
        after it learns an update reaches all of that round's targets. (Below
        that, as in the local profile under 10 members, an update reached only
        2 of the 3 targets, and at 10 % loss about one small cluster in ten had
        a member that heard neither a death nor a second accuser.)"""
        scaled = self.retransmit_mult * math.ceil(math.log10(n_members + 1))
        return max(scaled, self.gossip_nodes)

    def event_retransmit_limit(self, n_members: int) -> int:
        """retransmit_limit with event_retransmit_mult."""
        scaled = self.event_retransmit_mult * math.ceil(math.log10(n_members + 1))
        return max(scaled, self.gossip_nodes)

    def scaled_push_pull_interval(self, n_members: int) -> float:
        """memberlist's pushPullScale: one more interval per doubling above the threshold."""
        if n_members <= self.push_pull_scale_threshold:
            return self.push_pull_interval
        mult = math.ceil(math.log2(n_members) - math.log2(self.push_pull_scale_threshold)) + 1
        return self.push_pull_interval * mult


_LAN: dict[str, Any] = {}
_WAN: dict[str, Any] = {
    "probe_interval": 5.0,
    "probe_timeout": 3.0,
    "suspicion_mult": 6,
    "gossip_interval": 0.5,
    "gossip_nodes": 4,
    "gossip_to_the_dead_time": 60.0,
    "push_pull_interval": 60.0,
    "stream_timeout": 30.0,
}
_LOCAL: dict[str, Any] = {
    "probe_interval": 1.0,
    "probe_timeout": 0.2,
    "indirect_checks": 1,
    "suspicion_mult": 3,
    "gossip_interval": 0.1,
    "gossip_to_the_dead_time": 15.0,
    "retransmit_mult": 2,
    "push_pull_interval": 15.0,
    "stream_timeout": 1.0,
}
PROFILES: dict[str, dict[str, Any]] = {"lan": _LAN, "wan": _WAN, "local": _LOCAL}

_TYPES: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "float": (int, float),
    "int": int,
    "bool": bool,
}
_FIELDS = {f.name: f for f in dataclasses.fields(Config)}


def _check_names(values: dict[str, Any]) -> None:
    for name in values:
        if name not in _FIELDS:
            raise ConfigError(name, "unknown setting")


def _validate(cfg: Config) -> None:
    for name, f in _FIELDS.items():
        value: object = getattr(cfg, name)
        expected = _TYPES[str(f.type)]
        if isinstance(value, bool) and f.type != "bool":
            raise ConfigError(name, f"expected {f.type}, got a boolean")
        if not isinstance(value, expected):
            raise ConfigError(name, f"expected {f.type}, got {type(value).__name__}")
        if isinstance(value, (int, float)) and not (value >= 0 and math.isfinite(value)):
            raise ConfigError(name, f"must be a finite number >= 0, got {value!r}")

    def need(ok: bool, setting: str, why: str) -> None:
        if not ok:
            raise ConfigError(setting, why)

    need(cfg.profile in PROFILES, "profile", "must be lan, wan or local")
    name_len = len(cfg.cluster_name.encode())
    need(0 < name_len <= 64, "cluster_name", "must be 1..64 bytes")
    for positive in (
        "probe_interval",
        "probe_timeout",
        "gossip_interval",
        "push_pull_interval",
        "stream_timeout",
        "leave_timeout",
        "reconnect_interval",
    ):
        need(getattr(cfg, positive) > 0, positive, "must be > 0")
    need(cfg.probe_timeout < cfg.probe_interval, "probe_timeout", "must be < probe_interval")
    need(cfg.suspicion_mult >= 1, "suspicion_mult", "must be >= 1")
    need(cfg.suspicion_max_timeout_mult >= 1, "suspicion_max_timeout_mult", "must be >= 1")
    need(1 <= cfg.max_health <= 64, "max_health", "must be 1..64")
    need(cfg.gossip_nodes >= 1, "gossip_nodes", "must be >= 1")
    need(cfg.retransmit_mult >= 1, "retransmit_mult", "must be >= 1")
    need(cfg.push_pull_scale_threshold >= 1, "push_pull_scale_threshold", "must be >= 1")
    need(
        512 <= cfg.udp_buffer_size <= MAX_UDP_PAYLOAD,
        "udp_buffer_size",
        f"must be 512..{MAX_UDP_PAYLOAD}",
    )
    need(
        cfg.packet_overhead <= cfg.udp_buffer_size - 400,
        "packet_overhead",
        "leaves fewer than 400 bytes of the UDP budget",
    )
    need(cfg.max_stream_bytes >= 64 * 1024, "max_stream_bytes", "must be >= 64 KiB")
    need(
        cfg.reconnect_max_backoff >= cfg.reconnect_interval,
        "reconnect_max_backoff",
        "must be >= reconnect_interval",
    )
    # An alive update carrying the largest tags must still fit in one packet.
    tag_room = cfg.packet_budget - 300
    need(16 <= cfg.max_tags_bytes <= tag_room, "max_tags_bytes", f"must be 16..{tag_room}")
    need(8 <= cfg.max_name_bytes <= 255, "max_name_bytes", "must be 8..255")
    lowest, highest = PROTOCOL_VERSIONS[0], PROTOCOL_VERSIONS[-1]
    need(
        lowest <= cfg.protocol_min <= highest,
        "protocol_min",
        f"must be {lowest}..{highest}",
    )
    need(
        cfg.protocol_min <= cfg.protocol_max <= highest,
        "protocol_max",
        f"must be protocol_min..{highest}",
    )
    need(16 <= cfg.max_event_bytes <= 8192, "max_event_bytes", "must be 16..8192")
    # The largest event, with its Lamport time and framing, must fit the budget.
    need(
        cfg.max_event_bytes + 32 <= cfg.event_budget,
        "event_budget",
        "must hold the largest event (max_event_bytes + 32)",
    )
    need(cfg.event_window >= 16, "event_window", "must be >= 16")
    need(cfg.event_retransmit_mult >= 1, "event_retransmit_mult", "must be >= 1")
