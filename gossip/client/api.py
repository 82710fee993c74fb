"""A small synchronous client for the control API, shared by the CLI commands.

Rules: the address comes from --api or GOSSIP_API (default 127.0.0.1:7947), the
token from --api-token or GOSSIP_API_TOKEN; every call has a timeout; failures
raise ApiClientError with one readable line (the CLI prints it and exits 1).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
from collections.abc import Iterator
from typing import Any

from gossip.hostport import format_hostport, parse_hostport

DEFAULT_API_PORT = 7947
DEFAULT_API = f"127.0.0.1:{DEFAULT_API_PORT}"
TIMEOUT_S = 10.0
MAX_RESPONSE_BYTES = 64 * 1024 * 1024


class ApiClientError(Exception):
    pass


def add_client_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", help=f"agent API HOST:PORT (env GOSSIP_API, {DEFAULT_API})")
    parser.add_argument("--api-token", help="API token (env GOSSIP_API_TOKEN)")


class ApiClient:
    def __init__(self, address: str | None = None, token: str | None = None) -> None:
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

    def _open(self, method: str, path: str, body: Any, timeout: float | None) -> Any:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        try:
            conn.request(method, path, body=data, headers=headers)
            return conn, conn.getresponse()
        except OSError as exc:
            conn.close()
            raise ApiClientError(f"cannot reach the agent API at {self.address}: {exc}") from None

    def call(self, method: str, path: str, body: Any = None, timeout: float = TIMEOUT_S) -> Any:
        conn, resp = self._open(method, path, body, timeout)
        try:
            raw = resp.read(MAX_RESPONSE_BYTES)
        except OSError as exc:
            raise ApiClientError(f"reading the answer failed: {exc}") from None
        finally:
            conn.close()
        if resp.getheader("content-type", "").startswith("text/plain"):
            text = raw.decode(errors="replace")
            if resp.status >= 400:
                raise ApiClientError(f"{method} {path}: HTTP {resp.status}: {text.strip()}")
            return text
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            raise ApiClientError(f"{method} {path}: answer is not JSON") from None
        if resp.status >= 400:
            message = answer.get("error") if isinstance(answer, dict) else answer
            raise ApiClientError(f"{method} {path}: HTTP {resp.status}: {message}")
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
