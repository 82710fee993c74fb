"""The membership state machine of one node: SWIM with Lifeguard, no I/O.

Rules:
- Inputs are method calls that take `now`; outputs are queued values drained
  with take_outputs(). The node never reads a clock and draws randomness only
  from the injected rng, so a seed and an input sequence fix every output.
- Probing: one member per (health-scaled) probe interval, round-robin over a
  shuffled order. No ack within the scaled probe timeout -> ping-req through
  `indirect_checks` random alive helpers plus a stream ping to the target;
  still nothing by the end of the interval -> suspect it. Missing acks and
  missing nacks raise the local health score; a success lowers it.
- Every datagram piggybacks pending updates (broadcast.py); while updates are
  pending, they are also gossiped to `gossip_nodes` random members every
  gossip interval.
- Updates are merged by members.supersedes; a suspicion becomes a death when
  its Lifeguard timeout passes (suspicion.py); a node that hears itself
  suspected or dead refutes with a higher incarnation.
- Push-pull: the responder merges the request before it builds its reply, so
  one exchange lets both sides refute what the other believed about them
  (this is what heals partitions; see docs/membership.md).
- A bad datagram is counted and reported as DatagramRejected; no input raises.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import cbor2

from gossip.core import outputs as out
from gossip.core.broadcast import BroadcastQueue
from gossip.core.config import Config
from gossip.core.lifeguard import Health, expected_confirmations, suspicion_min_timeout
from gossip.core.members import ALIVE, DEAD, LEFT, SUSPECT, MemberTable, supersedes
from gossip.core.messages import (
    Ack,
    Alive,
    Dead,
    Left,
    Message,
    Nack,
    Ping,
    PingReq,
    PushPull,
    PushPullReply,
    StateEntry,
    Suspect,
)
from gossip.core.suspicion import Suspicion
from gossip.core.timers import Timer, TimerHeap
from gossip.core.types import Address, MemberInfo, MemberState
from gossip.core.wire import Codec, WireError, encode_message, wrap

JOIN_RETRY_MIN = 1.0
"""Seconds before the first retry of a failed join (doubling up to the
reconnect interval)."""
_MISS = ("", -1)
SEEN_CACHE_MIN = 4096
"""Updates remembered by their bytes (at least; 8 per member in big clusters)."""
_LIVE_STATES = {ALIVE, SUSPECT}
_ALIVE_ONLY = {ALIVE}
_GOSSIP_STATES = {ALIVE, SUSPECT, DEAD}


@dataclass(slots=True)
class _Probe:
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
class _Relay:
    """A ping-req we serve: our ping's seq maps back to the requester's."""

    requester: Address
    their_seq: int
    answered: bool = False


@dataclass(slots=True)
class _Stream:
    kind: str  # "join" | "push_pull" | "reconnect" | "ping"
    peer: Address
    bytes_sent: int
    probe_seq: int = 0
    member: str = ""


@dataclass(slots=True)
class _Reconnect:
    address: Address
    next_try: float
    backoff: float
    until: float


class Node:
    def __init__(
        self,
        name: str,
        address: Address,
        cfg: Config,
        *,
        rng: random.Random,
        incarnation: int = 0,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        if not name or len(name.encode()) > cfg.max_name_bytes:
            raise ValueError(f"node name must be 1..{cfg.max_name_bytes} bytes")
        self.name = name
        self.address = address
        self.cfg = cfg
        self.rng = rng
        self.incarnation = incarnation
        self.tags: Mapping[str, str] = MappingProxyType(dict(tags or {}))
        _check_tags(cfg, self.tags)
        self._health = Health(cfg.max_health)
        self._codec = Codec(cfg)
        self._table = MemberTable(rng)
        self._timers = TimerHeap()
        self._queue = BroadcastQueue()
        self._outbox: list[Any] = []
        self._counters: dict[tuple[str, str], float] = {}
        self._seq = 0
        self._stream_seq = 0
        self._probes: dict[int, _Probe] = {}
        self._relays: dict[int, _Relay] = {}
        self._streams: dict[int, _Stream] = {}
        self._suspicions: dict[str, Suspicion] = {}
        self._reconnects: dict[str, _Reconnect] = {}
        self._seeds: list[Address] = []
        self._seen: dict[bytes, tuple[str, int] | None] = {}
        self._gossip_timer: Timer | None = None
        self._started = False
        self._joined = False
        self._leaving = False
        self._leave_done = False
        self._left_payload = b""
        self._self_payload = b""

    # ---- public surface -----------------------------------------------------

    @property
    def health(self) -> int:
        return self._health.score

    def members(self) -> list[MemberInfo]:
        return list(self._table)

    def member(self, name: str) -> MemberInfo | None:
        return self._table.get(name)

    def count(self, state: MemberState) -> int:
        """How many members (this node included) are in `state`: O(1)."""
        return self._table.counts[state]

    def take_outputs(self) -> list[Any]:
        outputs, self._outbox = self._outbox, []
        return outputs

    def next_deadline(self) -> float | None:
        return self._timers.next_deadline()

    def handle_timeout(self, now: float) -> None:
        self._timers.fire_due(now)

    def start(self, now: float, seeds: Sequence[Address]) -> None:
        """Announce ourselves with a fresh incarnation, start the timers, join."""
        if self._started:
            return
        self._started = True
        self._set_incarnation(self.incarnation + 1)
        self._table.put(self._self_info(now), probe=False)
        self._broadcast_self()
        cfg, rng = self.cfg, self.rng
        self._timers.add(now + rng.uniform(0, cfg.probe_interval), self._probe_tick)
        self._timers.add(now + rng.uniform(0.5, 1.0) * cfg.push_pull_interval, self._push_pull_tick)
        self._timers.add(now + rng.uniform(0.5, 1.5) * cfg.reconnect_interval, self._reconnect_tick)
        self._seeds = [s for s in seeds if s != self.address]
        self.join(now, self._seeds)
        if self._seeds:
            self._timers.add(now + JOIN_RETRY_MIN * rng.uniform(1.0, 1.5), self._retry_join, 1)

    def join(self, now: float, seeds: Sequence[Address]) -> None:
        """Push-pull with every seed; the first success emits Joined."""
        for seed in seeds:
            if seed != self.address:
                self._open_push_pull(now, seed, kind="join", join=True)

    def leave(self, now: float) -> None:
        """Disseminate `left`; LeaveCompleted follows when it has been sent its
        full retransmit count (or after leave_timeout, or at once when alone)."""
        if self._leaving or not self._started:
            if not self._started:
                self._outbox.append(out.LeaveCompleted())
            return
        self._leaving = True
        self._table.put(self._self_info(now, LEFT), probe=False)
        self._left_payload = wrap(encode_message(Left(self.name, self.incarnation)))
        self._queue.enqueue(self.name, self._left_payload)
        self._schedule_gossip(now)
        if self._table.live == 0:
            self._finish_leave(now, None)
        else:
            self._timers.add(now + self.cfg.leave_timeout, self._finish_leave)

    def set_tags(self, now: float, tags: Mapping[str, str]) -> None:
        self.tags = MappingProxyType(dict(tags))
        _check_tags(self.cfg, self.tags)
        if self._started and not self._leaving:
            self._set_incarnation(self.incarnation + 1)
            self._table.put(self._self_info(now), probe=False)
            self._broadcast_self()
            self._schedule_gossip(now)

    # ---- datagrams ------------------------------------------------------------

    def receive_datagram(self, now: float, src: Address, payload: bytes) -> None:
        self._count("packets_in")
        self._count("bytes_in", len(payload))
        codec, seen = self._codec, self._seen
        fresh: list[tuple[bytes, Message]] = []
        accusations: list[tuple[str, int]] = []
        try:
            # Parse everything before acting on anything: a packet is all or nothing.
            for raw in codec.split_packet(payload):
                hit = seen.get(raw, _MISS)
                if hit is _MISS:
                    fresh.append((raw, codec.parse(raw)))
                elif hit is not None:
                    accusations.append(hit)
        except WireError as exc:
            self._reject(src, exc.reason)
            return
        if not self._started:
            return
        for raw, msg in fresh:
            self._dispatch(now, src, msg, raw)
        for name, inc in accusations:
            self._correct_if_stale(src, name, inc)

    def _correct_if_stale(self, src: Address, name: str, inc: int) -> None:
        """`src` gossips a suspicion or death older than the alive we hold:
        it missed a refutation, so tell it directly (a lost refutation would
        otherwise let its suspicion timer kill a live member)."""
        cur = self._table.get(name)
        if cur is not None and cur.state == ALIVE and inc < cur.incarnation:
            self._count("corrections_sent")
            self._send(src, Alive(name, cur.incarnation, cur.address, cur.tags))

    def _reject(self, src: Address, reason: str) -> None:
        self._count("datagrams_rejected", 1, reason)
        self._outbox.append(out.DatagramRejected(src, reason))

    def _dispatch(self, now: float, src: Address, msg: Message, raw: bytes) -> None:
        kind = type(msg)
        if kind is Alive:
            self._on_alive(now, msg, raw)  # type: ignore[arg-type]
        elif kind is Ack:
            self._on_ack(now, msg.seq)  # type: ignore[union-attr]
        elif kind is Ping:
            self._on_ping(now, src, msg)  # type: ignore[arg-type]
        elif kind is Suspect:
            self._correct_if_stale(src, msg.name, msg.incarnation)  # type: ignore[union-attr]
            self._on_suspect(now, msg, raw)  # type: ignore[arg-type]
        elif kind is Dead:
            self._correct_if_stale(src, msg.name, msg.incarnation)  # type: ignore[union-attr]
            self._on_dead(now, msg, raw)  # type: ignore[arg-type]
        elif kind is Left:
            self._on_left(now, msg, raw)  # type: ignore[arg-type]
        elif kind is PingReq:
            self._on_ping_req(now, src, msg)  # type: ignore[arg-type]
        elif kind is Nack:
            probe = self._probes.get(msg.seq)  # type: ignore[union-attr]
            if probe is not None:
                probe.nacks += 1
                self._count("nacks_received")
        else:
            self._reject(src, "unexpected_kind")

    # ---- sending ----------------------------------------------------------------

    def _send(self, to: Address, first: Message | None = None, *, extra: bytes = b"") -> bool:
        """Send `first` (+ the wrapped `extra`) with as many pending updates as
        fit. With no `first`, send only if an update is pending. True if sent."""
        codec = self._codec
        head = [wrap(encode_message(first))] if first is not None else []
        if extra:
            head.append(extra)
        room = codec.room - sum(len(p) for p in head)
        parts = head + self._queue.take(room, self._retransmit_limit())
        if not parts:
            return False
        payload = codec.packet(parts)
        self._outbox.append(out.Send(to, payload))
        self._count("packets_out")
        self._count("bytes_out", len(payload))
        return True

    def _retransmit_limit(self) -> int:
        return self.cfg.retransmit_limit(len(self._table))

    def _enqueue(self, now: float, key: str, msg: Message, raw: bytes | None) -> None:
        """Queue an update for gossip, reusing the bytes it arrived in if any."""
        self._queue.enqueue(key, wrap(raw if raw is not None else encode_message(msg)))
        self._schedule_gossip(now)

    def _remember(self, raw: bytes | None, accused: tuple[str, int] | None = None) -> None:
        """Cache an applied update's bytes: a repeat of it is then skipped
        unparsed (precedence makes re-applying an update a no-op). For a
        suspicion or death, `accused` (name, incarnation) is kept so that a
        repeat can still be recognised as stale and corrected."""
        if raw is not None:
            seen = self._seen
            if len(seen) >= max(SEEN_CACHE_MIN, 8 * len(self._table)):
                seen.clear()
            seen[raw] = accused

    def _schedule_gossip(self, now: float) -> None:
        if self._gossip_timer is None:
            self._gossip_timer = self._timers.add(now + self.cfg.gossip_interval, self._gossip_tick)

    def _gossip_tick(self, now: float, _: Any) -> None:
        self._gossip_timer = None
        if not self._queue:
            return
        targets = self._table.random_members(
            self.cfg.gossip_nodes, _GOSSIP_STATES, exclude=(self.name,)
        )
        dead_horizon = now - self.cfg.gossip_to_the_dead_time
        for info in targets:
            if info.state == DEAD and info.state_since < dead_horizon:
                continue
            if not self._send(info.address):
                break
        if self._leaving and not self._queue.pending(self.name, self._left_payload):
            self._finish_leave(now, None)
        if self._queue:
            self._schedule_gossip(now)

    # ---- probing ------------------------------------------------------------------

    def _probe_tick(self, now: float, _: Any) -> None:
        self._flush_counters()
        if self._leaving:
            return
        self._timers.add(now + self._health.scale(self.cfg.probe_interval), self._probe_tick)
        target = self._table.next_probe_target(self.name)
        if target is not None:
            self._probe(now, target)

    def _probe(self, now: float, target: MemberInfo) -> None:
        self._seq += 1
        seq = self._seq
        probe = _Probe(seq, target, now)
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
            self.cfg.indirect_checks, _ALIVE_ONLY, exclude=(self.name, target.name)
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
                _Stream("ping", target.address, 0, probe_seq=seq),
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

    def _probe_failed(self, now: float, probe: _Probe) -> None:
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
        relay = _Relay(src, req.seq)
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

    def _health_delta(self, delta: int, reason: str) -> None:
        if delta and self._health.apply(delta):
            self._outbox.append(out.HealthChanged(self._health.score, reason))

    # ---- membership updates ----------------------------------------------------

    def _on_alive(self, now: float, a: Alive, raw: bytes | None = None) -> None:
        if a.name == self.name:
            self._on_alive_about_self(now, a)
            return
        cur = self._table.get(a.name)
        if cur is not None:
            self._remember(raw)
            inc = cur.incarnation
            if a.incarnation < inc or (a.incarnation == inc and cur.state != ALIVE):
                return  # stale, or loses to suspect/dead/left at this incarnation
            if a.incarnation == inc:
                if a.address != cur.address:
                    self._name_conflict(cur, a.address, winner=cur.address)
                return  # duplicate (tags change only with a new incarnation)
        info = MemberInfo(a.name, a.address, ALIVE, a.incarnation, _freeze(a.tags), now)
        self._table.put(info)
        self._remember(raw)
        self._enqueue(now, a.name, a, raw)
        if cur is None or cur.state >= DEAD:
            self._reconnects.pop(a.name, None)
            self._outbox.append(out.MemberJoined(info))
            return
        if cur.address != a.address:
            self._name_conflict(cur, a.address, winner=a.address)
        if cur.state == SUSPECT:
            self._suspicions.pop(a.name, None)
            self._outbox.append(out.MemberRecovered(info))
        elif cur.address != a.address or dict(cur.tags) != dict(a.tags):
            self._outbox.append(out.MemberUpdated(info))

    def _on_alive_about_self(self, now: float, a: Alive) -> None:
        if a.address != self.address:
            # Another node claims our name: do not fight over it (each
            # refutation would provoke the other); report it.
            me = self._self_info(now)
            self._name_conflict(me, a.address, winner=_winner(me, a))
        elif a.incarnation > self.incarnation and not self._leaving:
            self._refute(now, "alive", a.name, a.incarnation)

    def _name_conflict(self, holder: MemberInfo, other: Address, winner: Address) -> None:
        self._count("name_conflicts")
        self._outbox.append(out.NameConflict(holder.name, holder.address, other, winner))

    def _on_suspect(self, now: float, s: Suspect, raw: bytes | None = None) -> None:
        if s.name == self.name:
            if s.incarnation >= self.incarnation and not self._leaving:
                self._refute(now, "suspect", s.accuser, s.incarnation)
            else:
                self._reassert(now)
            return
        self._suspect(now, s.name, s.incarnation, s.accuser, raw)

    def _suspect(
        self, now: float, name: str, inc: int, accuser: str, raw: bytes | None = None
    ) -> None:
        cur = self._table.get(name)
        if cur is None:
            return
        self._remember(raw, (name, inc))
        if inc < cur.incarnation or cur.state >= DEAD:
            return
        msg = Suspect(name, inc, accuser)
        if cur.state == SUSPECT and inc == cur.incarnation:
            susp = self._suspicions.get(name)
            if susp is not None and susp.confirm(accuser):
                self._timers.add(susp.deadline, self._suspicion_expired, susp)
                self._enqueue(now, name, msg, raw)
            return
        # A new suspicion; at a higher incarnation than a current one it
        # replaces it (the member refuted the old one, so its timer is void).
        info = MemberInfo(name, cur.address, SUSPECT, inc, cur.tags, now)
        self._table.put(info)
        n = len(self._table)
        cfg = self.cfg
        min_s = suspicion_min_timeout(cfg.suspicion_mult, n, cfg.probe_interval)
        susp = Suspicion(
            name,
            inc,
            accuser,
            now,
            expected_confirmations(cfg.suspicion_mult, n),
            min_s,
            min_s * cfg.suspicion_max_timeout_mult,
        )
        self._suspicions[name] = susp
        self._timers.add(susp.deadline, self._suspicion_expired, susp)
        self._enqueue(now, name, msg, raw)
        self._count("suspicions")
        self._outbox.append(out.MemberSuspected(info, accuser, 0, susp.timeout))

    def _suspicion_expired(self, now: float, susp: Suspicion) -> None:
        if self._suspicions.get(susp.name) is not susp or susp.deadline > now:
            return  # refuted, replaced, or moved later than this timer
        cur = self._table.get(susp.name)
        if cur is None or cur.state != SUSPECT:
            return
        del self._suspicions[susp.name]
        self._declare(now, cur, DEAD, susp.first_accuser, susp.confirmations)
        self._enqueue(now, cur.name, Dead(cur.name, cur.incarnation, self.name), None)

    def _on_dead(self, now: float, d: Dead, raw: bytes | None = None) -> None:
        if d.name == self.name:
            if d.incarnation >= self.incarnation and not self._leaving:
                self._refute(now, "dead", d.accuser, d.incarnation)
            else:
                self._reassert(now)
            return
        cur = self._table.get(d.name)
        if cur is None:
            return
        self._remember(raw, (d.name, d.incarnation))
        if not supersedes(d.incarnation, DEAD, cur.incarnation, cur.state):
            return
        susp = self._suspicions.pop(d.name, None)
        cur = MemberInfo(cur.name, cur.address, cur.state, d.incarnation, cur.tags, now)
        self._declare(now, cur, DEAD, d.accuser, susp.confirmations if susp else 0)
        self._enqueue(now, d.name, d, raw)

    def _on_left(self, now: float, msg: Left, raw: bytes | None = None) -> None:
        if msg.name == self.name:
            if msg.incarnation >= self.incarnation and not self._leaving:
                self._refute(now, "left", msg.name, msg.incarnation)
            return
        cur = self._table.get(msg.name)
        if cur is None:
            return
        self._remember(raw)
        if not supersedes(msg.incarnation, LEFT, cur.incarnation, cur.state):
            return
        self._suspicions.pop(msg.name, None)
        cur = MemberInfo(cur.name, cur.address, cur.state, msg.incarnation, cur.tags, now)
        self._declare(now, cur, LEFT, msg.name, 0)
        self._enqueue(now, msg.name, msg, raw)

    def _declare(
        self, now: float, cur: MemberInfo, state: MemberState, accuser: str, confirmations: int
    ) -> None:
        """Record `cur` as dead or left, notify, and arrange its reaping."""
        info = MemberInfo(cur.name, cur.address, state, cur.incarnation, cur.tags, now)
        self._table.put(info)
        if state == DEAD:
            self._outbox.append(out.MemberFailed(info, accuser, confirmations, self.health))
            cfg = self.cfg
            self._reconnects[info.name] = _Reconnect(
                info.address,
                now + cfg.reconnect_interval,
                cfg.reconnect_interval,
                now + cfg.reconnect_timeout,
            )
        else:
            self._reconnects.pop(info.name, None)
            self._outbox.append(out.MemberLeft(info))
        self._timers.add(now + self.cfg.dead_reap_time, self._reap, info)

    def _reap(self, now: float, info: MemberInfo) -> None:
        if self._table.get(info.name) is info:
            self._table.remove(info.name)
            self._outbox.append(out.MemberReaped(info.name))

    def _refute(self, now: float, accused: str, accuser: str, accused_inc: int) -> None:
        self._set_incarnation(max(self.incarnation, accused_inc) + 1)
        self._table.put(self._self_info(now), probe=False)
        self._broadcast_self()
        self._schedule_gossip(now)
        self._count("refutations")
        self._outbox.append(out.SelfRefuted(accused, accuser, self.incarnation))
        self._health_delta(1, "refuted")

    # ---- self -----------------------------------------------------------------------

    def _self_info(self, now: float, state: MemberState = ALIVE) -> MemberInfo:
        return MemberInfo(self.name, self.address, state, self.incarnation, self.tags, now)

    def _set_incarnation(self, inc: int) -> None:
        if inc != self.incarnation:
            self.incarnation = inc
            self._outbox.append(out.IncarnationChanged(inc))

    def _broadcast_self(self) -> None:
        alive = Alive(self.name, self.incarnation, self.address, self.tags)
        self._self_payload = wrap(encode_message(alive))
        self._queue.enqueue(self.name, self._self_payload)

    def _reassert(self, now: float) -> None:
        """A stale accusation still circulates: someone missed our refutation,
        so gossip our current alive again (unless it is still queued)."""
        if not self._leaving and not self._queue.pending(self.name, self._self_payload):
            self._queue.enqueue(self.name, self._self_payload)
            self._schedule_gossip(now)
            self._count("reassertions")

    def _finish_leave(self, now: float, _: Any) -> None:
        if not self._leave_done:
            self._leave_done = True
            self._outbox.append(out.LeaveCompleted())

    # ---- streams: push-pull and the fallback ping -----------------------------------

    def _open_stream(
        self, now: float, to: Address, payload: bytes, stream: _Stream, timeout: float
    ) -> None:
        self._stream_seq += 1
        stream.bytes_sent = len(payload)
        self._streams[self._stream_seq] = stream
        self._outbox.append(out.OpenStream(to, self._stream_seq, payload, timeout))

    def _state_entries(self) -> tuple[StateEntry, ...]:
        return tuple(
            StateEntry(m.name, m.address, m.incarnation, m.state, m.tags) for m in self._table
        )

    def _open_push_pull(
        self, now: float, to: Address, *, kind: str, join: bool, member: str = ""
    ) -> None:
        payload = self._codec.frame(PushPull(join, self._state_entries()))
        self._count("push_pull_bytes_out", len(payload))
        stream = _Stream(kind, to, 0, member=member)
        self._open_stream(now, to, payload, stream, self.cfg.stream_timeout)

    def handle_stream_request(self, now: float, src: Address, payload: bytes) -> bytes | None:
        """Answer one request frame (push-pull or ping); None closes the stream."""
        try:
            msg = self._codec.decode_frame(payload)
        except WireError as exc:
            self._reject(src, exc.reason)
            return None
        if not self._started:
            return None
        if isinstance(msg, Ping):
            return self._codec.frame(Ack(msg.seq)) if msg.target == self.name else None
        if isinstance(msg, PushPull):
            self._count("push_pull_bytes_in", len(payload))
            self._merge(now, msg.entries)
            reply = self._codec.frame(PushPullReply(self._state_entries()))
            self._count("push_pull_bytes_out", len(reply))
            self._outbox.append(
                out.PushPullCompleted(src, len(msg.entries), len(reply), len(payload), msg.join)
            )
            return reply
        self._reject(src, "unexpected_kind")
        return None

    def receive_stream_response(self, now: float, stream_id: int, payload: bytes) -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is None:
            return
        try:
            msg = self._codec.decode_frame(payload)
        except WireError as exc:
            self._reject(stream.peer, exc.reason)
            self._stream_lost(now, stream)
            return
        if stream.kind == "ping":
            if isinstance(msg, Ack) and msg.seq == stream.probe_seq:
                self._on_ack(now, msg.seq)
            else:
                self._fallback_failed(now, stream.probe_seq)
            return
        if not isinstance(msg, PushPullReply):
            self._reject(stream.peer, "unexpected_kind")
            self._stream_lost(now, stream)
            return
        self._count("push_pull_bytes_in", len(payload))
        self._merge(now, msg.entries)
        self._outbox.append(
            out.PushPullCompleted(
                stream.peer,
                len(msg.entries),
                stream.bytes_sent,
                len(payload),
                stream.kind == "join",
            )
        )
        self._reconnects.pop(stream.member, None)
        if stream.kind == "join" and not self._joined:
            self._joined = True
            self._outbox.append(out.Joined(stream.peer))

    def stream_failed(self, now: float, stream_id: int, reason: str) -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is not None:
            self._count("streams_failed", 1, stream.kind)
            self._stream_lost(now, stream)

    def _stream_lost(self, now: float, stream: _Stream) -> None:
        if stream.kind == "ping":
            self._fallback_failed(now, stream.probe_seq)
            return
        rec = self._reconnects.get(stream.member)
        if stream.kind == "reconnect" and rec is not None:
            rec.backoff = min(rec.backoff * 2, self.cfg.reconnect_max_backoff)
            rec.next_try = now + rec.backoff * self.rng.uniform(0.75, 1.25)

    def _merge(self, now: float, entries: tuple[StateEntry, ...]) -> None:
        """Fold a remote table into ours. A remote `dead` only makes us suspect
        (our own timers decide), as in memberlist."""
        me = self.name
        for e in entries:
            if e.state == ALIVE:
                self._on_alive(now, Alive(e.name, e.incarnation, e.address, e.tags))
            elif e.state == LEFT:
                self._on_left(now, Left(e.name, e.incarnation))
            elif e.name == me:
                self._on_suspect(now, Suspect(me, e.incarnation, "push_pull"))
            else:
                self._suspect(now, e.name, e.incarnation, me)

    def _push_pull_tick(self, now: float, _: Any) -> None:
        interval = self.cfg.scaled_push_pull_interval(len(self._table))
        self._timers.add(now + interval * self.rng.uniform(0.9, 1.1), self._push_pull_tick)
        if self._leaving:
            return
        peers = self._table.random_members(1, _ALIVE_ONLY, exclude=(self.name,))
        if peers:
            self._open_push_pull(now, peers[0].address, kind="push_pull", join=False)

    def _reconnect_tick(self, now: float, _: Any) -> None:
        """Try one random recently-dead member (partitions heal through this);
        when alone, try the seeds again."""
        cfg = self.cfg
        self._timers.add(
            now + cfg.reconnect_interval * self.rng.uniform(0.75, 1.25), self._reconnect_tick
        )
        if self._leaving:
            return
        for name in [n for n, r in self._reconnects.items() if r.until <= now]:
            del self._reconnects[name]
        due = sorted(n for n, r in self._reconnects.items() if r.next_try <= now)
        if due:
            name = self.rng.choice(due)
            rec = self._reconnects[name]
            rec.next_try = now + rec.backoff  # until the attempt reports back
            self._open_push_pull(now, rec.address, kind="reconnect", join=False, member=name)
        # A seed that is not an alive member of our table is in another cluster
        # (a partition that outlived the dead list, or a split at start-up).
        strangers = [s for s in self._seeds if s not in self._alive_addresses()]
        if strangers:
            self._open_push_pull(now, self.rng.choice(strangers), kind="join", join=True)

    def _alive_addresses(self) -> set[Address]:
        return {m.address for m in self._table if m.state <= SUSPECT}

    def _retry_join(self, now: float, attempt: int) -> None:
        """Until a first join succeeds, retry the seeds with exponential backoff."""
        if self._joined or self._leaving:
            return
        self.join(now, self._seeds)
        delay = min(JOIN_RETRY_MIN * 2**attempt, self.cfg.reconnect_interval)
        self._timers.add(now + delay * self.rng.uniform(1.0, 1.5), self._retry_join, attempt + 1)

    # ---- counters --------------------------------------------------------------------

    def _count(self, name: str, value: float = 1, label: str = "") -> None:
        key = (name, label)
        self._counters[key] = self._counters.get(key, 0) + value

    def _flush_counters(self) -> None:
        """Emit accumulated counters as Metric outputs (once per probe tick)."""
        for (name, label), value in self._counters.items():
            labels = {"reason": label} if label else {}
            self._outbox.append(out.Metric(name, value, labels))
        self._counters.clear()


def _check_tags(cfg: Config, tags: Mapping[str, str]) -> None:
    if not all(type(k) is str and type(v) is str for k, v in tags.items()):
        raise ValueError("tags must map str to str")
    size = len(cbor2.dumps(dict(tags)))
    if size > cfg.max_tags_bytes:
        raise ValueError(f"tags take {size} bytes encoded; the limit is {cfg.max_tags_bytes}")


def _freeze(tags: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(tags)) if tags else _NO_TAGS


_NO_TAGS: Mapping[str, str] = MappingProxyType({})


def _winner(holder: MemberInfo, claim: Alive) -> Address:
    """Name conflict rule: the higher incarnation wins; at equal incarnation the
    node that already holds the name keeps it."""
    return claim.address if claim.incarnation > holder.incarnation else holder.address
