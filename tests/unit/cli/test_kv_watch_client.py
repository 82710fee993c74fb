"""The watch client: resumes from the last version it saw, over cut answers and errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from itertools import islice

import pytest

from gossip.client import watch
from gossip.client.api import ApiClient, ApiClientError

ANSWERS: list[tuple[int, bytes]] = []
PATHS: list[str] = []


class ScriptedApi(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        PATHS.append(self.path)
        status, body = ANSWERS.pop(0) if ANSWERS else (404, b'{"error": "script ended"}')
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiClient]:
    monkeypatch.setattr(watch, "RETRY_S", 0.0)
    server = HTTPServer(("127.0.0.1", 0), ScriptedApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ANSWERS.clear()
    PATHS.clear()
    yield ApiClient(f"127.0.0.1:{server.server_address[1]}")
    server.shutdown()
    server.server_close()


def test_the_next_poll_passes_the_last_version_seen_across_garbage_and_503(
    client: ApiClient,
) -> None:
    ANSWERS.extend(
        [
            (200, b'{"version": "1.0@a", "changed": true}'),
            (200, b"not json"),  # an answer cut short
            (503, b'{"error": "not enough replicas"}'),
            (200, b'{"version": "1.0@a", "changed": false}'),
            (200, b'{"version": "2.0@b", "changed": true}'),
        ]
    )
    got = list(islice(watch.changes(client, key="k", wait=1), 2))
    assert [g["version"] for g in got] == ["1.0@a", "2.0@b"]
    assert "watch=&" in PATHS[0] and all("watch=1.0%40a" in p for p in PATHS[1:])


def test_a_client_error_stops_the_watch_and_so_do_too_many_failures(client: ApiClient) -> None:
    ANSWERS.append((400, b'{"error": "wait must be 1..300 seconds"}'))
    with pytest.raises(ApiClientError, match="HTTP 400"):
        next(watch.changes(client, prefix="p/", wait=1))
    ANSWERS.extend([(503, b"{}")] * 3)
    with pytest.raises(ApiClientError, match="in a row"):
        next(watch.changes(client, prefix="p/", wait=1, retries=2))
    with pytest.raises(ApiClientError, match="not both"):
        next(watch.changes(client, key="k", prefix="p/"))
