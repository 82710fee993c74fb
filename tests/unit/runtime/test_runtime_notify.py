"""Notifications become metrics once, with stable names, and MemberEvents."""

from __future__ import annotations

from typing import Any

from gossip.core.membership import outputs as o
from gossip.core.types import MemberInfo, MemberState
from gossip.runtime.metrics import Registry
from gossip.runtime.notify import Notifier


class _Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def _add(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))

    info = warning = debug = _add


def _notifier() -> tuple[Notifier, Registry, _Log]:
    reg, log = Registry(), _Log()
    return Notifier(log, reg, lambda: [], lambda: 2), reg, log


def test_a_rejected_datagram_is_counted_once_by_reason() -> None:
    n, reg, _ = _notifier()
    n.notification(o.DatagramRejected(("1.2.3.4", 5), "bad_cbor"), 0.0)
    n.notification(o.Metric("datagrams_rejected", 1, {"reason": "bad_cbor"}), 0.0)
    assert 'gossip_datagrams_rejected_total{reason="bad_cbor"} 1\n' in reg.render()


def test_core_counters_get_total_names_and_rtts_fill_the_histogram() -> None:
    n, reg, _ = _notifier()
    n.notification(o.Metric("probes_sent", 3), 0.0)
    n.notification(o.Metric("probe_rtt_seconds", 0.002), 0.0)
    text = reg.render()
    assert "gossip_probes_sent_total 3" in text
    assert "gossip_probe_rtt_seconds_count 1" in text
    assert "gossip_health 2" in text


def test_a_failure_is_logged_with_its_causes_and_becomes_an_event() -> None:
    n, reg, log = _notifier()
    m = MemberInfo("b", ("10.0.0.2", 7946), MemberState.DEAD, 4)
    event = n.notification(o.MemberFailed(m, accuser="c", confirmations=2, health=1), 5.0)
    assert event is not None and event.kind == "failed" and event.time == 5.0
    assert log.lines == [
        (
            "member_failed",
            {
                "member": "b",
                "address": "10.0.0.2:7946",
                "incarnation": 4,
                "state": "dead",
                "accuser": "c",
                "confirmations": 2,
                "health": 1,
            },
        )
    ]
    assert event.to_json()["event"] == "member_failed"
    assert "gossip_failures_total 1" in reg.render()
