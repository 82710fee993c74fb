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
timers fire late) raises the health score (lifeguard.stall_penalty) and
restarts every probe in flight from the end of the stall: acks that arrived
while the loop was blocked are still queued, and time this node could not run
does not count against the target.
"""

from __future__ import annotations

from typing import Any

from gossip.core.membership import outputs as out
from gossip.core.membership.lifeguard import stall_penalty
from gossip.core.membership.members import SUSPECT
from gossip.core.membership.messages import (
    Ack,
    Nack,
    Ping,
    PingReq,
    Suspect,
)
from gossip.core.membership.nodebase import (
    ALIVE_ONLY,
    NodeBase,
    ProbeState,
    RelayState,
    StreamState,
)
from gossip.core.membership.wire import encode_message, wrap
from gossip.core.types import Address, MemberInfo


class Prober(NodeBase):
    def loop_lagged(self, now: float, lag_s: float) -> None:
        """The shell ran its timers `lag_s` seconds late (call it before
        handle_timeout): a stall long enough to matter makes this node more
        patient, and its probes in flight start over."""
        cfg = self.cfg
        penalty = stall_penalty(lag_s, cfg.probe_timeout, cfg.probe_interval)
        if not penalty or not cfg.stall_awareness:
            return
        self._count("loop_stalls")
        self._health_delta(penalty, "loop_stalled")
        for probe in self._probes.values():
            self._restart_probe(now, probe)

    def _restart_probe(self, now: float, probe: ProbeState) -> None:
        for timer in probe.timers:
            timer.cancel()
        probe.timers.clear()
        probe.start = now
        probe.expired = False
        timers = self._timers
        if not probe.expected_nacks:  # the indirect round has not started yet
            probe.timers.append(
                timers.add(
                    now + self._health.scale(self.cfg.probe_timeout), self._probe_timeout, probe.seq
                )
            )
        probe.timers.append(
            timers.add(
                now + self._health.scale(self.cfg.probe_interval), self._probe_end, probe.seq
            )
        )

    # ---- probing ------------------------------------------------------------------

    def _probe_tick(self, now: float, _: Any) -> None:
        self._flush_counters(now)
        if self._leaving:
            return
        self._timers.add(now + self._health.scale(self.cfg.probe_interval), self._probe_tick)
        target = self._table.next_probe_target(self.name)
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
            extra = wrap(encode_message(Suspect(target.name, target.incarnation, self.name)))
        self._send(target.address, Ping(seq, target.name), extra=extra)
        self._count("probes_sent")
        timers = self._timers
        probe.timers.append(
            timers.add(now + self._health.scale(self.cfg.probe_timeout), self._probe_timeout, seq)
        )
        probe.timers.append(
            timers.add(now + self._health.scale(self.cfg.probe_interval), self._probe_end, seq)
        )

    def _probe_timeout(self, now: float, seq: int) -> None:
        probe = self._probes.get(seq)
        if probe is None:
            return
        target = probe.target
        helpers = self._table.random_members(
            self.cfg.indirect_checks, ALIVE_ONLY, exclude=(self.name, target.name)
        )
        req = PingReq(seq, target.name, target.address)
        for helper in helpers:
            self._send(helper.address, req)
        probe.expected_nacks = len(helpers)
        self._outbox.append(out.ProbeTimedOut(target.name, len(helpers), self.health))
        if self.cfg.tcp_fallback_ping:
            # The stream may outlive the probe interval by one base interval:
            # under heavy loss TCP's retransmissions need that long, and a
            # verdict waits for it rather than suspect a reachable member.
            deadline = probe.start + self._health.scale(self.cfg.probe_interval)
            payload = self._codec.frame(Ping(seq, target.name))
            probe.fallback_pending = True
            self._open_stream(
                now,
                target.address,
                payload,
                StreamState("ping", target.address, 0, probe_seq=seq),
                timeout=deadline - now + self.cfg.probe_interval,
            )

    def _probe_end(self, now: float, seq: int) -> None:
        probe = self._probes.get(seq)
        if probe is None:
            return
        if probe.fallback_pending:
            probe.expired = True  # the stream's outcome decides
            return
        self._probe_failed(now, probe)

    def _fallback_failed(self, now: float, seq: int) -> None:
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
            self._suspect(now, target.name, target.incarnation, self.name)

    def _on_ack(self, now: float, seq: int) -> None:
        probe = self._probes.pop(seq, None)
        if probe is not None:
            for timer in probe.timers:
                timer.cancel()
            self._count("acks_received")
            self._outbox.append(out.Metric("probe_rtt_seconds", now - probe.start))
            self._health_delta(-1, "probe_succeeded")
            return
        relay = self._relays.pop(seq, None)
        if relay is not None:
            self._send(relay.requester, Ack(relay.their_seq))

    def _on_ping(self, now: float, src: Address, ping: Ping) -> None:
        if ping.target != self.name:
            self._count("pings_misdirected")
            return
        self._send(src, Ack(ping.seq))

    def _on_ping_req(self, now: float, src: Address, req: PingReq) -> None:
        if req.target == self.name:
            self._send(src, Ack(req.seq))
            return
        self._seq += 1
        relay = RelayState(src, req.seq)
        self._relays[self._seq] = relay
        self._send(req.address, Ping(self._seq, req.target))
        self._timers.add(now + self.cfg.probe_timeout, self._relay_nack, self._seq)
        self._timers.add(now + self.cfg.probe_interval, self._relay_expired, self._seq)

    def _relay_expired(self, now: float, seq: int) -> None:
        self._relays.pop(seq, None)

    def _relay_nack(self, now: float, seq: int) -> None:
        relay = self._relays.get(seq)
        if relay is not None and not relay.answered:
            relay.answered = True
            self._send(relay.requester, Nack(relay.their_seq))
