"""Config: profiles, validation, derived values."""

from __future__ import annotations

import pytest

from gossip.core.membership.config import Config, ConfigError


def test_lan_profile_has_memberlist_defaults() -> None:
    cfg = Config.for_profile("lan")
    assert (cfg.probe_interval, cfg.probe_timeout, cfg.suspicion_mult) == (1.0, 0.5, 4)
    assert (cfg.suspicion_max_timeout_mult, cfg.gossip_interval, cfg.gossip_nodes) == (6, 0.2, 3)
    assert (cfg.indirect_checks, cfg.retransmit_mult, cfg.push_pull_interval) == (3, 4, 30.0)
    assert (cfg.udp_buffer_size, cfg.packet_overhead) == (1400, 0)


def test_wan_and_local_profiles_differ_from_lan() -> None:
    assert Config.for_profile("wan").probe_interval == 5.0
    assert Config.for_profile("local").probe_timeout == 0.2
    assert Config.for_profile("wan", cluster_name="x", gossip_nodes=5).gossip_nodes == 5


@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"probe_timeout": 2.0}, "probe_timeout"),
        ({"probe_interval": -1.0}, "probe_interval"),
        ({"gossip_nodes": 0}, "gossip_nodes"),
        ({"udp_buffer_size": 100}, "udp_buffer_size"),
        ({"packet_overhead": 1300}, "packet_overhead"),
        ({"cluster_name": ""}, "cluster_name"),
        ({"retransmit_mult": "4"}, "retransmit_mult"),
        ({"tcp_fallback_ping": 1}, "tcp_fallback_ping"),
        ({"indirect_checks": True}, "indirect_checks"),
        ({"probe_interval": float("nan")}, "probe_interval"),
        ({"no_such_thing": 1}, "no_such_thing"),
    ],
)
def test_bad_values_name_the_setting(changes: dict[str, object], setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config().replace(**changes)
    assert info.value.setting == setting


def test_unknown_profile_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        Config.for_profile("moon")
    assert info.value.setting == "profile"


def test_retransmit_limit_grows_with_log10_of_cluster_size() -> None:
    cfg = Config()
    assert [cfg.retransmit_limit(n) for n in (1, 9, 10, 99, 100, 1000)] == [4, 4, 8, 8, 12, 16]


def test_an_update_is_sent_at_least_to_one_gossip_rounds_targets() -> None:
    local = Config.for_profile("local")  # retransmit_mult 2, gossip_nodes 3
    assert [local.retransmit_limit(n) for n in (1, 5, 9, 10, 100)] == [3, 3, 3, 4, 6]
    assert Config(gossip_nodes=5).retransmit_limit(5) == 5


def test_push_pull_interval_scales_above_32_members() -> None:
    cfg = Config()
    assert cfg.scaled_push_pull_interval(32) == 30.0
    assert cfg.scaled_push_pull_interval(64) == 60.0
    assert cfg.scaled_push_pull_interval(1000) == 180.0
