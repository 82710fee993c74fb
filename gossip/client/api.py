"""A small synchronous client for the control API, shared by the CLI commands.

Rules: the address comes from --api or GOSSIP_API (default 127.0.0.1:7947), the
token from --api-token or GOSSIP_API_TOKEN; every call has a timeout; failures
raise ApiClientError with one readable line (the CLI prints it and exits 1).
Each thread keeps one connection to the agent (HTTP keep-alive) and reuses it
while it was idle less than REUSE_IDLE_S, well under the server's idle timeout,
so a reused connection is not one the server is closing; a request on a reused
connection that finds it closed before any answer is sent once more on a new
one when its method is idempotent (the server closes only idle connections,
so it almost surely never saw the first send).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from gossip.hostport import format_hostport, parse_hostport

DEFAULT_API_PORT = 7947
DEFAULT_API = f"127.0.0.1:{DEFAULT_API_PORT}"
TIMEOUT_S = 10.0
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})
"""Methods sent once more when a kept connection turns out closed (never a POST)."""
REUSE_IDLE_S = 2.0
"""A kept connection idle longer than this is replaced (the server closes at 5 s)."""


class ApiClientError(Exception):
    pass


def add_client_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", help=f"agent API HOST:PORT (env GOSSIP_API, {DEFAULT_API})")
    parser.add_argument("--api-token", help="API token (env GOSSIP_API_TOKEN)")


class ApiClient:
    def __init__(self, address: str | None = None, token: str | None = None) -> None:
        self._kept = threading.local()
        self._lock = threading.Lock()
        self._opened: list[http.client.HTTPConnection] = []
        """Every kept connection of every thread, so close() (and dropping the client) ends them."""
        address = address or os.environ.get("GOSSIP_API") or DEFAULT_API
        try:
            self.host, self.port = parse_hostport(address, DEFAULT_API_PORT, "127.0.0.1")
        except ValueError as exc:
            raise ApiClientError(f"bad API address: {exc}") from None
        self.token = token or os.environ.get("GOSSIP_API_TOKEN") or None

    @property
    def address(self) -> str:
        return format_hostport(self.host, self.port)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ApiClient:
        return cls(getattr(args, "api", None), getattr(args, "api_token", None))

    def _headers(self, content_type: str) -> dict[str, str]:
        headers = {"Content-Type": content_type}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _open(self, method: str, path: str, body: Any, timeout: float | None) -> Any:
        """A new connection of its own (for feeds that stream until they end)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        data = None if body is None else json.dumps(body).encode()
        try:
            conn.request(method, path, body=data, headers=self._headers("application/json"))
            return conn, conn.getresponse()
        except OSError as exc:
            conn.close()
            raise ApiClientError(f"cannot reach the agent API at {self.address}: {exc}") from None

    def close(self) -> None:
        """Close the kept connections of every thread (a later call opens a new one)."""
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()

    def __del__(self) -> None:
        self.close()

    def _new_connection(self, timeout: float) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        with self._lock:
            self._opened.append(conn)
        return conn

    def _drop(self, conn: http.client.HTTPConnection) -> None:
        conn.close()
        with self._lock, contextlib.suppress(ValueError):
            self._opened.remove(conn)

    def exchange(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        timeout: float = TIMEOUT_S,
        content_type: str = "application/octet-stream",
    ) -> tuple[int, str, bytes]:
        """One request on this thread's kept connection: (status, content type, body)."""
        headers = self._headers(content_type)
        conn: http.client.HTTPConnection | None = getattr(self._kept, "conn", None)
        idle = time.monotonic() - getattr(self._kept, "used", 0.0)
        if conn is not None and idle > REUSE_IDLE_S:
            self._drop(conn)
            conn = None
        for fresh in (conn is None, True):
            if conn is None:
                conn = self._new_connection(timeout)
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                raw = resp.read(MAX_RESPONSE_BYTES)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self._drop(conn)
                if fresh or method not in IDEMPOTENT:
                    self._kept.conn = None
                    raise ApiClientError(f"the agent API at {self.address} closed") from None
                conn = None  # the kept connection had been closed: once more, on a new one
                continue
            except (OSError, http.client.HTTPException) as exc:
                self._drop(conn)
                self._kept.conn = None
                raise ApiClientError(
                    f"cannot reach the agent API at {self.address}: {exc}"
                ) from None
            # An answer cut at MAX_RESPONSE_BYTES leaves bytes behind: that connection is done.
            if not resp.isclosed():
                self._drop(conn)
            self._kept.conn = conn if resp.isclosed() else None
            self._kept.used = time.monotonic()
            return resp.status, resp.getheader("content-type", ""), raw
        raise AssertionError("unreachable")  # the second pass always returns or raises

    def call(self, method: str, path: str, body: Any = None, timeout: float = TIMEOUT_S) -> Any:
        data = None if body is None else json.dumps(body).encode()
        status, ctype, raw = self.exchange(method, path, data, timeout, "application/json")
        if ctype.startswith("text/plain"):
            text = raw.decode(errors="replace")
            if status >= 400:
                raise ApiClientError(f"{method} {path}: HTTP {status}: {text.strip()}")
            return text
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            raise ApiClientError(f"{method} {path}: answer is not JSON") from None
        if status >= 400:
            message = answer.get("error") if isinstance(answer, dict) else answer
            raise ApiClientError(f"{method} {path}: HTTP {status}: {message}")
        return answer

    def stream_lines(
        self, path: str, method: str = "GET", body: Any = None
    ) -> Iterator[dict[str, Any]]:
        """Yield JSON objects from a line-per-event feed until it ends."""
        conn, resp = self._open(method, path, body, None)
        try:
            if resp.status >= 400:
                raw = resp.read(MAX_RESPONSE_BYTES)
                try:
                    why = json.loads(raw).get("error", "")
                except (ValueError, AttributeError):
                    why = ""
                raise ApiClientError(f"{method} {path}: HTTP {resp.status}: {why}")
            while True:
                line = resp.readline(1024 * 1024)
                if not line:
                    return
                try:
                    yield json.loads(line)
                except ValueError:
                    continue
        finally:
            conn.close()
