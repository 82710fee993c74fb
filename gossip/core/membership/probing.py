"""Probing: SWIM's failure detector with Lifeguard's local health.

Rules: one member per health-scaled probe interval, round-robin over a
shuffled order (members.py). No ack within the health-scaled probe timeout ->
ping-req through `indirect_checks` random alive helpers, which ping the target
and relay its ack, or answer with a nack when it stays silent; at the same
time a stream ping goes straight to the target (the TCP fallback). Still no
ack when the interval ends (and the stream ping has failed) -> suspect the
target. Any ack lowers the health score by one; a failed probe raises it by
the number of nacks the helpers owed us (our own network may be the problem),
or by one when there were no helpers. A suspect is told it is suspected with
every probe (Lifeguard's buddy system), so it can refute at once.
A stall of this node's own event loop (reported by the shell, which saw its
timers fire late) raises the health score (lifeguard.stall_penalty, applied
by the node) and restarts every probe in flight from the end of the stall:
acks that arrived while the loop was blocked are still queued, and time this
node could not run does not count against the target.

The Prober is a part the node owns: it holds the probes and ping-req relays
in flight and their timers; the node decides when to probe (its probe tick)
and what a failed probe means (`suspect`, which the node passes in).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from gossip.core.membership import outputs as out
from gossip.core.membership.config import Config
from gossip.core.membership.counters import CountFn
from gossip.core.membership.lifeguard import Health
from gossip.core.membership.members import ALIVE_ONLY, SUSPECT, MemberTable
from gossip.core.membership.messages import Ack, Message, Nack, Ping, PingReq, Suspect
from gossip.core.membership.timers import Timer, TimerHeap
from gossip.core.membership.wire import Codec, encode_message, wrap
from gossip.core.types import Address, MemberInfo


class SendFn(Protocol):
    """The node's send: `first` (+ the wrapped `extra`) with piggybacked updates."""

    def __call__(
        self, to: Address, first: Message | None = None, *, extra: bytes = b""
    ) -> bool: ...


OpenPingFn = Callable[[float, Address, bytes, int, float], None]
"""open_ping(now, to, frame, probe_seq, timeout): the stream (TCP fallback) ping."""
SuspectFn = Callable[[float, str, int, str], None]
"""suspect(now, name, incarnation, accuser): the node's verdict on a failed probe."""
RttSampleFn = Callable[[str, float], None]
"""rtt_sample(name, seconds): a direct probe's round trip (coordinates.py)."""


@dataclass(slots=True)
class ProbeState:
    seq: int
    target: MemberInfo
    start: float
    timers: list[Timer] = field(default_factory=list)
    expected_nacks: int = 0
    nacks: int = 0
    fallback_pending: bool = False
    expired: bool = False
    """The probe interval ended while the stream ping was still in flight."""


@dataclass(slots=True)
class RelayState:
    """A ping-req we serve: our ping's seq maps back to the requester's."""

    requester: Address
    their_seq: int
    answered: bool = False


class Prober:
    """Probes, their timers and the ping-req relays of one node."""

    def __init__(
        self,
        name: str,
        cfg: Config,
        *,
        table: MemberTable,
        timers: TimerHeap,
        health: Health,
        codec: Codec,
        send: SendFn,
        emit: Callable[[out.Output], None],
        count: CountFn,
        health_delta: Callable[[int, str], None],
        open_ping: OpenPingFn,
        suspect: SuspectFn,
        rtt_sample: RttSampleFn | None = None,
    ) -> None:
        self._name = name
        self._cfg = cfg
        self._table = table
        self._timers = timers
        self._health = health
        self._codec = codec
        self._send = send
        self._emit = emit
        self._count = count
        self._health_delta = health_delta
        self._open_ping = open_ping
        self._suspect = suspect
        self._rtt_sample = rtt_sample
        self._seq = 0
        self._probes: dict[int, ProbeState] = {}
        self._relays: dict[int, RelayState] = {}

    # ---- probing ------------------------------------------------------------------

    def probe_next(self, now: float) -> None:
        """Probe the next member of the round-robin order, if any."""
        target = self._table.next_probe_target(self._name)
        if target is not None:
            self._probe(now, target)

    def _probe(self, now: float, target: MemberInfo) -> None:
        self._seq += 1
        seq = self._seq
        probe = ProbeState(seq, target, now)
        self._probes[seq] = probe
        # Lifeguard's buddy system: tell a suspect directly, so it refutes quickly.
        extra = b""
        if target.state == SUSPECT:
            extra = wrap(encode_message(Suspect(target.name, target.incarnation, self._name)))
        self._send(target.address, Ping(seq, target.name), extra=extra)
        self._count("probes_sent")
        timers = self._timers
        probe.timers.append(
            timers.add(now + self._health.scale(self._cfg.probe_timeout), self._probe_timeout, seq)
        )
        probe.timers.append(
            timers.add(now + self._health.scale(self._cfg.probe_interval), self._probe_end, seq)
        )

    def restart_probes(self, now: float) -> None:
        """Start every probe in flight over from `now` (the end of a stall of
        this node's loop): its timeout and interval run again from here; a
        probe whose indirect round has started keeps it and only waits anew."""
        for probe in self._probes.values():
            for timer in probe.timers:
                timer.cancel()
            probe.timers.clear()
            probe.start = now
            probe.expired = False
            timers = self._timers
            if not probe.expected_nacks:  # the indirect round has not started yet
                probe.timers.append(
                    timers.add(
                        now + self._health.scale(self._cfg.probe_timeout),
                        self._probe_timeout,
                        probe.seq,
                    )
                )
            probe.timers.append(
                timers.add(
                    now + self._health.scale(self._cfg.probe_interval), self._probe_end, probe.seq
                )
            )

    def _probe_timeout(self, now: float, seq: int) -> None:
        probe = self._probes.get(seq)
        if probe is None:
            return
        target = probe.target
        helpers = self._table.random_members(
            self._cfg.indirect_checks, ALIVE_ONLY, exclude=(self._name, target.name)
        )
        req = PingReq(seq, target.name, target.address)
        for helper in helpers:
            self._send(helper.address, req)
        probe.expected_nacks = len(helpers)
        self._emit(out.ProbeTimedOut(target.name, len(helpers), self._health.score))
        if self._cfg.tcp_fallback_ping:
            # The stream may outlive the probe interval by one base interval:
            # under heavy loss TCP's retransmissions need that long, and a
            # verdict waits for it rather than suspect a reachable member.
            deadline = probe.start + self._health.scale(self._cfg.probe_interval)
            payload = self._codec.frame(Ping(seq, target.name))
            probe.fallback_pending = True
            timeout = deadline - now + self._cfg.probe_interval
            self._open_ping(now, target.address, payload, seq, timeout)

    def _probe_end(self, now: float, seq: int) -> None:
        probe = self._probes.get(seq)
        if probe is None:
            return
        if probe.fallback_pending:
            probe.expired = True  # the stream's outcome decides
            return
        self._probe_failed(now, probe)

    def fallback_failed(self, now: float, seq: int) -> None:
        """The stream ping of probe `seq` failed (or was answered wrongly)."""
        probe = self._probes.get(seq)
        if probe is not None:
            probe.fallback_pending = False
            if probe.expired:
                self._probe_failed(now, probe)

    def _probe_failed(self, now: float, probe: ProbeState) -> None:
        del self._probes[probe.seq]
        # Lifeguard: a missing nack means our own path is lossy, not the target.
        if probe.expected_nacks:
            self._health_delta(probe.expected_nacks - probe.nacks, "missed_nacks")
        else:
            self._health_delta(1, "probe_failed")
        target = self._table.get(probe.target.name)
        if target is not None and target.state <= SUSPECT:
            self._suspect(now, target.name, target.incarnation, self._name)

    # ---- answers --------------------------------------------------------------------

    def on_ack(self, now: float, seq: int) -> None:
        probe = self._probes.pop(seq, None)
        if probe is not None:
            for timer in probe.timers:
                timer.cancel()
            self._count("acks_received")
            self._emit(out.Metric("probe_rtt_seconds", now - probe.start))
            direct = not probe.expected_nacks and not probe.fallback_pending  # not relayed
            if self._rtt_sample is not None and direct:
                self._rtt_sample(probe.target.name, now - probe.start)
            self._health_delta(-1, "probe_succeeded")
            return
        relay = self._relays.pop(seq, None)
        if relay is not None:
            self._send(relay.requester, Ack(relay.their_seq))

    def on_nack(self, seq: int) -> None:
        probe = self._probes.get(seq)
        if probe is not None:
            probe.nacks += 1
            self._count("nacks_received")

    def on_ping(self, src: Address, ping: Ping) -> None:
        if ping.target != self._name:
            self._count("pings_misdirected")
            return
        self._send(src, Ack(ping.seq))

    def on_ping_req(self, now: float, src: Address, req: PingReq) -> None:
        if req.target == self._name:
            self._send(src, Ack(req.seq))
            return
        self._seq += 1
        relay = RelayState(src, req.seq)
        self._relays[self._seq] = relay
        self._send(req.address, Ping(self._seq, req.target))
        self._timers.add(now + self._cfg.probe_timeout, self._relay_nack, self._seq)
        self._timers.add(now + self._cfg.probe_interval, self._relay_expired, self._seq)

    def _relay_expired(self, now: float, seq: int) -> None:
        self._relays.pop(seq, None)

    def _relay_nack(self, now: float, seq: int) -> None:
        relay = self._relays.get(seq)
        if relay is not None and not relay.answered:
            relay.answered = True
            self._send(relay.requester, Nack(relay.their_seq))
