"""Agents as local subprocesses on loopback: for `gossip cluster`, tests and benchmarks.

Rules: every process started here is remembered by PID and stopped by PID
(SIGTERM, then SIGKILL after a grace period); nothing else is ever signalled.
Agent i uses UDP/TCP port base+2i and API port base+2i+1 on 127.0.0.1 (or the
loopback host given, such as ::1), logs JSON lines to workdir/<name>.log, and
keeps its data in workdir/<name>/.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gossip.client.api import ApiClient, ApiClientError
from gossip.hostport import format_hostport, is_ipv6

HOST = "127.0.0.1"
QUICK_CONFIG = """
[core]
probe_interval = 0.4
probe_timeout = 0.15
gossip_interval = 0.1
suspicion_mult = 3
push_pull_interval = 5.0
leave_timeout = 1.0
"""
"""A config file for scenarios that should take seconds (tests, benchmarks)."""


@dataclass
class AgentProcess:
    name: str
    port: int
    api_port: int
    log_path: Path
    data_dir: Path
    args: list[str]
    proc: subprocess.Popen[bytes] | None = None
    starts: int = field(default=0)
    host: str = HOST

    @property
    def address(self) -> str:
        return format_hostport(self.host, self.port)

    def api(self) -> ApiClient:
        return ApiClient(format_hostport(self.host, self.api_port))

    def members(self) -> dict[str, dict[str, Any]]:
        """name -> member JSON as this agent sees it ({} if the API does not answer)."""
        try:
            answer = self.api().call("GET", "/v1/members", timeout=2.0)
        except ApiClientError:
            return {}
        return {m["name"]: m for m in answer["members"]}

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.starts += 1

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum: int) -> None:
        if self.running():
            assert self.proc is not None
            os.kill(self.proc.pid, signum)

    def wait(self, timeout: float) -> int | None:
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM (graceful leave), then SIGKILL if it has not exited within `grace`."""
        self.signal(signal.SIGTERM)
        code = self.wait(grace)
        if code is None and self.running():
            self.signal(signal.SIGKILL)
            code = self.wait(5.0)
        return code


def ports_free(base: int, count: int, host: str = HOST) -> bool:
    family = socket.AF_INET6 if is_ipv6(host) else socket.AF_INET
    for port in range(base, base + count):
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            with socket.socket(family, kind) as s:
                try:
                    s.bind((host, port))
                except OSError:
                    return False
    return True


def find_free_base(count: int, low: int = 20000, high: int = 32000, host: str = HOST) -> int:
    """A block of ports free now; kept below Linux's ephemeral range (32768+) so that
    outgoing connections cannot grab one of them before the agents bind."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(low, high - count)
        if ports_free(base, count, host):
            return base
    raise RuntimeError(f"no block of {count} free ports found")


class LocalCluster:
    def __init__(
        self,
        size: int,
        workdir: Path,
        *,
        base_port: int | None = None,
        profile: str = "local",
        extra_args: Sequence[str] = (),
        config_text: str | None = None,
        name_prefix: str = "node",
        python: str = sys.executable,
        host: str = HOST,
    ) -> None:
        self.workdir = workdir
        self.host = host
        if base_port is None:
            base_port = find_free_base(2 * size, host=host)
        self.base_port = base_port
        config: list[str] = []
        if config_text is not None:
            workdir.mkdir(parents=True, exist_ok=True)
            path = workdir / "agent.toml"
            path.write_text(config_text)
            config = ["--config", str(path)]
        self.agents: list[AgentProcess] = []
        for i in range(size):
            name = f"{name_prefix}-{i + 1}"
            port = self.base_port + 2 * i
            args = [
                python, "-m", "gossip", "agent",
                "--name", name,
                "--bind", format_hostport(host, port),
                "--api", format_hostport(host, port + 1),
                "--profile", profile,
                "--log-format", "json",
                "--data-dir", str(workdir / name),
                *config,
                *extra_args,
            ]  # fmt: skip
            if i > 0:
                args += ["--join", format_hostport(host, self.base_port)]
            self.agents.append(
                AgentProcess(
                    name, port, port + 1, workdir / f"{name}.log", workdir / name, args, host=host
                )
            )

    def start(self) -> None:
        for agent in self.agents:
            agent.start()

    def views(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {a.name: a.members() for a in self.agents if a.running()}

    def wait_until(
        self, check: Any, timeout: float, poll: float = 0.2, what: str = "condition"
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(poll)
        raise TimeoutError(f"{what} not reached within {timeout:.0f} s")

    def all_see(self, names: Sequence[str], state: str, observers: Sequence[str]) -> bool:
        by_name = {a.name: a for a in self.agents}
        for observer in observers:
            view = by_name[observer].members()
            if not all(view.get(n, {}).get("state") == state for n in names):
                return False
        return True

    def wait_all_alive(self, timeout: float = 30.0) -> None:
        names = [a.name for a in self.agents]
        self.wait_until(
            lambda: self.all_see(names, "alive", names), timeout, what=f"{len(names)} alive"
        )

    def stop(self, grace: float = 10.0) -> dict[str, int | None]:
        for agent in self.agents:
            agent.signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        deadline = time.monotonic() + grace
        for agent in self.agents:
            codes[agent.name] = agent.wait(max(0.1, deadline - time.monotonic()))
        for agent in self.agents:
            if agent.running():
                agent.signal(signal.SIGKILL)
                agent.wait(5.0)
        return codes

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.stop()
