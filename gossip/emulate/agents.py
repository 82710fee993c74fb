"""Agent processes under an emulation: start, kill -9, pause, resume, restart
and stop, each inside its own network namespace.

Rules: every agent runs in a new session, so a Ctrl-C at the terminal reaches
only the emulator, which then stops the agents itself. Signals go only to the
pids this module started and their sessions' process groups. `stop_all` never
raises and always leaves no agent running: SIGCONT (a paused agent cannot
leave), SIGTERM, a bounded wait, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gossip.hostport import format_hostport

GOSSIP_PORT = 7946
API_PORT = 7947


@dataclass
class AgentSpec:
    """How to start one agent: its name, address, seeds and where it writes."""

    node: str
    ip: str
    seeds: Sequence[str]
    profile: str
    out_dir: Path
    prefix: Sequence[str]  # e.g. ["ip", "netns", "exec", NS]
    command: Sequence[str]  # e.g. [sys.executable, "-m", "gossip"] or ["dist/gossip"]

    @property
    def log_file(self) -> Path:
        return self.out_dir / f"{self.node}.log"

    def argv(self) -> list[str]:
        address = format_hostport(self.ip, GOSSIP_PORT)
        argv = [*self.prefix, *self.command, "agent", "--name", self.node]
        argv += ["--bind", address, "--advertise", address, "--api", f"127.0.0.1:{API_PORT}"]
        argv += ["--data-dir", str(self.out_dir / "data" / self.node)]
        argv += [
            "--log-file",
            str(self.log_file),
            "--log-format",
            "json",
            "--profile",
            self.profile,
        ]
        for seed in self.seeds:
            argv += ["--join", format_hostport(seed, GOSSIP_PORT)]
        return argv


@dataclass
class Agent:
    spec: AgentSpec
    proc: subprocess.Popen[bytes] | None = None
    paused: bool = False
    starts: int = 0
    exits: list[int] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> int:
        assert not self.running(), f"{self.spec.node} is already running"
        self.spec.out_dir.mkdir(parents=True, exist_ok=True)
        stderr = (self.spec.out_dir / f"{self.spec.node}.stderr").open("ab")
        with stderr:
            self.proc = subprocess.Popen(
                self.spec.argv(),
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
            )
        self.paused = False
        self.starts += 1
        return self.proc.pid

    def signal(self, sig: signal.Signals) -> int:
        """Send `sig` to this agent; returns its pid.

        SIGKILL, SIGSTOP and SIGCONT go to the agent's whole process group (its
        own session, so only processes it started): a one-file executable runs
        the agent in a child of a bootloader, which can forward SIGTERM but not
        these. SIGTERM goes to the pid alone, as a second one would cut the
        graceful leave short."""
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"{self.spec.node} is not running")
        if sig in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCONT):
            os.killpg(self.proc.pid, sig)
        else:
            os.kill(self.proc.pid, sig)
        return self.proc.pid

    def kill(self) -> int:
        pid = self.signal(signal.SIGKILL)
        assert self.proc is not None
        self.exits.append(self.proc.wait(timeout=10))
        self.paused = False
        return pid

    def pause(self) -> int:
        pid = self.signal(signal.SIGSTOP)
        self.paused = True
        return pid

    def resume(self) -> int:
        pid = self.signal(signal.SIGCONT)
        self.paused = False
        return pid

    def terminate(self) -> None:
        """Ask for a graceful stop (the agent leaves). Never raises."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            if self.paused:
                os.killpg(proc.pid, signal.SIGCONT)  # a stopped process cannot leave
                self.paused = False
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    def reap(self, timeout: float) -> None:
        """Wait up to `timeout` for the exit, then SIGKILL. Never raises."""
        proc = self.proc
        if proc is None:
            return
        try:
            self.exits.append(proc.wait(timeout=timeout))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            self.exits.append(proc.wait())
        # Whatever the agent left in its session (a one-file child) goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def stop_all(agents: Sequence[Agent], timeout: float = 5.0) -> None:
    """Stop every agent: all are asked at once (one SIGTERM each: a second one
    would cut the graceful leave short), then each is waited for."""
    live = [a for a in agents if a.running()]
    for agent in live:
        agent.terminate()
    deadline = time.monotonic() + timeout
    for agent in live:
        agent.reap(max(0.1, deadline - time.monotonic()))
