"""`gossip kv` against a stand-in API server: paths, raw bytes, errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from gossip.cli import main

SEEN: list[tuple[str, str, bytes]] = []


class FakeApi(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        SEEN.append((self.command, self.path, body))
        if self.path.startswith("/v1/kv/missing"):
            status, ctype, out = 404, "application/json", b'{"error": "no such key: missing"}'
        elif self.command == "GET" and "local=1" in self.path:
            status, ctype, out = 200, "application/json", b'{"key": "a/b", "deleted": true}'
        elif self.command == "GET" and self.path.startswith("/v1/kv/"):
            status, ctype, out = 200, "application/octet-stream", b"\x00raw\xff"
        elif self.path.startswith("/v1/kv?"):
            keys = [{"key": "a/b", "size": 3, "version": "1.n"}]
            status, ctype, out = 200, "application/json", json.dumps({"keys": keys}).encode()
        else:
            status, ctype, out = 200, "application/json", b'{"key": "a/b", "version": "1.n"}'
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_PUT = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), FakeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    SEEN.clear()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_put_sends_the_raw_value_to_the_quoted_key_path(api: str) -> None:
    assert main(["kv", "put", "--api", api, "a/b", "héllo", "--consistency", "all"]) == 0
    assert [("PUT", "/v1/kv/a%2Fb?consistency=all", "héllo".encode())] == SEEN


def test_put_and_delete_pass_the_session_version_given_with_after(api: str) -> None:
    assert main(["kv", "put", "--api", api, "k", "v", "--after", "17.2@n1"]) == 0
    assert main(["kv", "delete", "--api", api, "k", "--after", "18.0@n2"]) == 0
    assert [path for _, path, _ in SEEN] == [
        "/v1/kv/k?consistency=quorum&after=17.2%40n1",
        "/v1/kv/k?consistency=quorum&after=18.0%40n2",
    ]


def test_get_writes_the_value_bytes_unchanged(
    api: str, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["kv", "get", "--api", api, "a/b"]) == 0
    assert capfdbinary.readouterr().out == b"\x00raw\xff"


def test_get_local_and_list_and_delete(api: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kv", "get", "--api", api, "--local", "a/b"]) == 0
    assert '"deleted": true' in capsys.readouterr().out
    assert main(["kv", "list", "--api", api, "--prefix", "a/"]) == 0
    assert capsys.readouterr().out == "a/b\t3\n"
    assert main(["kv", "delete", "--api", api, "a/b"]) == 0
    assert SEEN[-1][:2] == ("DELETE", "/v1/kv/a%2Fb?consistency=quorum")


def test_a_missing_key_is_one_line_on_stderr_and_exit_1(
    api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["kv", "get", "--api", api, "missing"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "gossip kv get: HTTP 404: no such key: missing"
