"""Turns the core's notifications into log lines, metrics and MemberEvents.

Rules: one method per notification type, each writing the stable event name
and fields documented in docs/events.md; nothing here touches the network or
the Node (the caller passes what it needs). Every verdict line says why:
who accused, how many confirmations, our health, the incarnation.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, assert_never

from gossip.core.membership import outputs as o
from gossip.core.types import Address, MemberInfo, MemberState
from gossip.hostport import format_hostport
from gossip.runtime.history import MemberHistory
from gossip.runtime.metrics import Counter, Registry
from gossip.runtime.service import MemberEvent

# Core counters the notifications already account for (counted once, from the
# notification, with richer labels), or that the shell measures on the wire.
COVERED_CORE_COUNTERS = frozenset(
    {
        "datagrams_rejected",
        "suspicions",
        "refutations",
        "push_pull_bytes_in",
        "push_pull_bytes_out",
        "packets_in",
        "packets_out",
        "bytes_in",
        "bytes_out",
    }
)
RTT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


MAX_REFUSALS_LOGGED = 1024
"""Refused peers remembered so each is logged once (then forgotten en bloc)."""


def fmt_address(address: tuple[str, int]) -> str:
    return format_hostport(address[0], address[1])


def payload_json(payload: bytes) -> dict[str, str]:
    """A user event's payload as JSON carries it: text if it is UTF-8, else base64."""
    try:
        return {"payload": payload.decode()}
    except UnicodeDecodeError:
        return {"payload_base64": base64.b64encode(payload).decode()}


def member_fields(member: MemberInfo) -> dict[str, Any]:
    return {
        "member": member.name,
        "address": fmt_address(member.address),
        "incarnation": member.incarnation,
        "state": member.state.label,
    }


class Notifier:
    """Owns the agent's standard metrics and writes the membership log lines."""

    def __init__(
        self,
        logger: Any,
        registry: Registry,
        members: Callable[[], list[MemberInfo]],
        health: Callable[[], int],
    ) -> None:
        self.log = logger
        self._members = members
        self._conflicts_logged: set[tuple[str, Address, Address]] = set()
        self._refusals_logged: set[tuple[str, Address, tuple[int, int]]] = set()
        self.history: MemberHistory | None = None
        """When set, every verdict and clue about a member is recorded there too."""
        r = registry
        r.gauge("members", "Members by state as this node sees them.", ("state",), self._by_state)
        r.gauge("health", "Local health score (0 is healthy).", (), lambda: {(): float(health())})
        self.packets_in = r.counter("udp_packets_received_total", "UDP datagrams received.")
        self.packets_out = r.counter("udp_packets_sent_total", "UDP datagrams sent.")
        self.bytes_in = r.counter("udp_bytes_received_total", "UDP payload bytes received.")
        self.bytes_out = r.counter("udp_bytes_sent_total", "UDP payload bytes sent.")
        self.send_failed = r.counter("udp_send_failures_total", "Sends that failed (lost).")
        self.rejected = r.counter(
            "datagrams_rejected_total", "Datagrams dropped, by reason.", ("reason",)
        )
        self.streams = r.counter(
            "streams_total", "TCP streams by channel and direction.", ("channel", "direction")
        )
        self.streams_rejected = r.counter(
            "streams_rejected_total", "TCP streams cut or refused, by reason.", ("reason",)
        )
        self.push_pull_bytes = r.counter(
            "push_pull_bytes_total", "Push-pull state bytes.", ("direction",)
        )
        self.push_pulls = r.counter("push_pulls_total", "Completed push-pull exchanges.")
        self.suspicions = r.counter("suspicions_total", "Members this node saw suspected.")
        self.user_events = r.counter("user_events_total", "User events delivered here.")
        self.failures = r.counter("failures_total", "Members this node saw declared failed.")
        self.refutations = r.counter(
            "refutations_total", "Suspicions refuted, of others or of this node.", ("who",)
        )
        self.refusals = r.counter(
            "protocol_refusals_total", "Peers or packets refused for their protocol version."
        )
        self.probe_timeouts = r.counter("probe_timeouts_total", "Probes with no ack in time.")
        self.rtt = r.histogram("probe_rtt_seconds", "Probe round-trip times.", RTT_BUCKETS)
        self.loop_lag = r.histogram(
            "event_loop_lag_seconds", "How late the core's timers fire (loop stalls).", RTT_BUCKETS
        )
        self._registry = registry
        self._core_counters: dict[str, Counter] = {}

    def _by_state(self) -> dict[tuple[str, ...], float]:
        counts: dict[tuple[str, ...], float] = {(s.label,): 0.0 for s in MemberState}
        for m in self._members():
            counts[(m.state.label,)] += 1
        return counts

    def core_metric(self, metric: o.Metric) -> None:
        """Counters the core reports; names ending in `_seconds` are RTT-like samples."""
        if metric.name.endswith("_seconds") or metric.name in ("rtt", "probe_rtt"):
            self.rtt.observe(metric.value)
            return
        if metric.name in COVERED_CORE_COUNTERS:
            return
        counter = self._core_counters.get(metric.name)
        if counter is None:
            name = metric.name if metric.name.endswith("_total") else metric.name + "_total"
            counter = self._registry.counter(
                name, f"Core counter {metric.name}.", tuple(sorted(metric.labels))
            )
            self._core_counters[metric.name] = counter
        counter.inc(metric.value, metric.labels)

    def notification(self, out: o.Notification, now: float) -> MemberEvent | None:
        """Log and count one notification; return the MemberEvent it makes, if any."""
        match out:
            case o.MemberJoined():
                return self._joined(out, now)
            case o.MemberUpdated():
                return self._updated(out, now)
            case o.MemberSuspected():
                return self._suspected(out, now)
            case o.MemberFailed():
                return self._failed(out, now)
            case o.MemberRecovered():
                return self._recovered(out, now)
            case o.MemberLeft():
                return self._left(out, now)
            case o.MemberReaped():
                return self._reaped(out, now)
            case o.SelfRefuted():
                self._self_refuted(out)
            case o.ProbeTimedOut():
                self._probe_timed_out(out)
            case o.HealthChanged():
                self._health(out)
            case o.DatagramRejected():
                self._rejected(out)
            case o.NameConflict():
                self._name_conflict(out)
            case o.ProtocolRefused():
                self._protocol_refused(out)
            case o.PushPullCompleted():
                self._push_pull(out)
            case o.UserEventReceived():
                return self._user_event(out, now)
            case o.QueryReceived():
                return self._query(out, now)
            case o.QueryAnswered():
                pass  # the agent routes it to the asker
            case o.Metric():
                self.core_metric(out)
            case o.IncarnationChanged() | o.Joined() | o.LeaveCompleted():
                pass  # the agent acts on these itself
            case _:
                assert_never(out)
        return None

    # ---- one method per notification ---------------------------------------

    def _user_event(self, out: o.UserEventReceived, now: float) -> MemberEvent:
        self.user_events.inc()
        detail = {"ltime": out.ltime, "coalesce": out.coalesce, **payload_json(out.payload)}
        self.log.info("user_event_received", name=out.name, ltime=out.ltime, size=len(out.payload))
        return MemberEvent("user", out.name, None, now, detail)

    def _query(self, out: o.QueryReceived, now: float) -> MemberEvent:
        detail = {
            "qid": out.qid,
            "ltime": out.ltime,
            "origin": out.origin,
            "address": fmt_address(out.address),
            **payload_json(out.payload),
        }
        self.log.info("query_received", name=out.name, qid=out.qid, origin=out.origin)
        return MemberEvent("query", out.name, None, now, detail)

    def _remember(self, member: str, event: str, **detail: Any) -> None:
        if self.history is not None:
            self.history.record(member, event, **detail)

    def _joined(self, out: o.MemberJoined, now: float) -> MemberEvent:
        self._remember(out.member.name, "joined", incarnation=out.member.incarnation)
        self.log.info("member_joined", **member_fields(out.member), tags=dict(out.member.tags))
        return MemberEvent("joined", out.member.name, out.member, now)

    def _updated(self, out: o.MemberUpdated, now: float) -> MemberEvent:
        self._remember(out.member.name, "updated", incarnation=out.member.incarnation)
        self.log.info("member_updated", **member_fields(out.member), tags=dict(out.member.tags))
        return MemberEvent("updated", out.member.name, out.member, now)

    def _suspected(self, out: o.MemberSuspected, now: float) -> MemberEvent:
        self.suspicions.inc()
        detail = {
            "accuser": out.accuser,
            "confirmations": out.confirmations,
            "timeout_s": round(out.timeout, 3),
        }
        self._remember(out.member.name, "suspected", incarnation=out.member.incarnation, **detail)
        self.log.warning("member_suspected", **member_fields(out.member), **detail)
        return MemberEvent("suspected", out.member.name, out.member, now, detail)

    def _failed(self, out: o.MemberFailed, now: float) -> MemberEvent:
        self.failures.inc()
        detail = {"accuser": out.accuser, "confirmations": out.confirmations, "health": out.health}
        self._remember(out.member.name, "failed", incarnation=out.member.incarnation, **detail)
        self.log.warning("member_failed", **member_fields(out.member), **detail)
        return MemberEvent("failed", out.member.name, out.member, now, detail)

    def _recovered(self, out: o.MemberRecovered, now: float) -> MemberEvent:
        self.refutations.inc(labels={"who": "other"})
        self._remember(out.member.name, "refuted", incarnation=out.member.incarnation)
        self.log.info("member_refuted", **member_fields(out.member))
        return MemberEvent("recovered", out.member.name, out.member, now)

    def _left(self, out: o.MemberLeft, now: float) -> MemberEvent:
        self._remember(out.member.name, "left", incarnation=out.member.incarnation)
        self.log.info("member_left", **member_fields(out.member))
        return MemberEvent("left", out.member.name, out.member, now)

    def _reaped(self, out: o.MemberReaped, now: float) -> MemberEvent:
        self._remember(out.name, "reaped")
        self.log.info("member_reaped", member=out.name)
        return MemberEvent("reaped", out.name, None, now)

    def _self_refuted(self, out: o.SelfRefuted) -> None:
        self.refutations.inc(labels={"who": "self"})
        if self.history is not None:
            me = self.history.observer
            self._remember(
                me, "refuted_itself", accused_as=out.accused_state, accuser=out.accuser,
                incarnation=out.incarnation,
            )  # fmt: skip
        self.log.warning(
            "self_refuted",
            accused_state=out.accused_state,
            accuser=out.accuser,
            incarnation=out.incarnation,
        )

    def _probe_timed_out(self, out: o.ProbeTimedOut) -> None:
        self.probe_timeouts.inc()
        self._remember(out.target, "probe_timed_out", indirect_helpers=out.indirect_helpers)
        self.log.info(
            "probe_timed_out",
            member=out.target,
            indirect_helpers=out.indirect_helpers,
            health=out.health,
        )

    def _health(self, out: o.HealthChanged) -> None:
        self.log.info("health_changed", health=out.health, reason=out.reason)

    def _rejected(self, out: o.DatagramRejected) -> None:
        self.rejected.inc(labels={"reason": out.reason})
        self.log.debug("datagram_rejected", source=fmt_address(out.source), reason=out.reason)

    def _name_conflict(self, out: o.NameConflict) -> None:
        key = (out.name, out.holder, out.claimant)
        if key in self._conflicts_logged:
            return  # repeats with every gossip of the claimant's alive: log each pair once
        self._conflicts_logged.add(key)
        self.log.warning(
            "name_conflict",
            member=out.name,
            address=fmt_address(out.holder),
            claimant=fmt_address(out.claimant),
            winner=fmt_address(out.winner),
        )

    def _protocol_refused(self, out: o.ProtocolRefused) -> None:
        self.refusals.inc()
        key = (out.member, out.address, out.theirs)
        if key in self._refusals_logged:
            return  # repeats with every packet of that peer: log each once
        if len(self._refusals_logged) >= MAX_REFUSALS_LOGGED:
            self._refusals_logged.clear()
        self._refusals_logged.add(key)
        their = "unreadable" if out.theirs == (0, 0) else "{}-{}".format(*out.theirs)
        self.log.warning(
            "protocol_refused",
            member=out.member or None,
            address=fmt_address(out.address),
            their_versions=their,
            our_versions="{}-{}".format(*out.ours),
            why="no protocol version in common",
        )

    def _push_pull(self, out: o.PushPullCompleted) -> None:
        self.push_pulls.inc()
        self.push_pull_bytes.inc(out.bytes_sent, {"direction": "sent"})
        self.push_pull_bytes.inc(out.bytes_received, {"direction": "received"})
        self.log.debug(
            "push_pull_completed",
            peer=fmt_address(out.peer),
            members=out.members,
            bytes_sent=out.bytes_sent,
            bytes_received=out.bytes_received,
            join=out.join,
        )
