"""The API client keeps one connection per thread, and replaces one the server
closed while it was idle without the caller noticing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gossip.client.api import ApiClient


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    drop_after_answer = False

    def do_GET(self) -> None:
        body = f'{{"port": {self.client_address[1]}}}'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if type(self).drop_after_answer:  # closes without saying so, as an idle timeout does
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    _Handler.drop_after_answer = False


def _client(srv: ThreadingHTTPServer) -> ApiClient:
    return ApiClient(f"127.0.0.1:{srv.server_address[1]}")


def test_calls_from_one_thread_share_one_connection(server: ThreadingHTTPServer) -> None:
    client = _client(server)
    ports = {client.call("GET", "/x")["port"] for _ in range(5)}
    client.close()
    assert len(ports) == 1


def test_a_connection_the_server_closed_is_replaced(server: ThreadingHTTPServer) -> None:
    _Handler.drop_after_answer = True
    client = _client(server)
    ports = [client.call("GET", "/x")["port"] for _ in range(3)]
    client.close()
    assert len(set(ports)) == 3
