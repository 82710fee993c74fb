"""Raw HTTP exchanges with an agent's store routes (/v1/kv/...), for the CLI, benchmarks and tests.

Rules: values travel as raw bytes; an answer is read up to MAX_ANSWER bytes; an unreachable agent
or an error status becomes an ApiClientError with one readable line.
"""

from __future__ import annotations

import contextlib
import json
from urllib.parse import quote, urlencode

from gossip.client.api import TIMEOUT_S, ApiClient, ApiClientError

MAX_ANSWER = 16 << 20


def request(
    client: ApiClient,
    method: str,
    path: str,
    body: bytes | None = None,
    timeout: float = TIMEOUT_S,
) -> tuple[int, str, bytes]:
    """One raw HTTP exchange: (status, content type, body), on the client's kept connection."""
    return client.exchange(method, path, body, timeout)


def call(client: ApiClient, method: str, path: str, body: bytes | None = None) -> bytes:
    status, ctype, raw = request(client, method, path, body)
    if status >= 400:
        message = raw.decode(errors="replace").strip()
        if ctype.startswith("application/json"):
            with contextlib.suppress(ValueError, AttributeError):
                message = json.loads(raw).get("error", message)
        raise ApiClientError(f"HTTP {status}: {message}")
    return raw


def key_path(key: str, **query: str) -> str:
    path = "/v1/kv/" + quote(key, safe="")
    return f"{path}?{urlencode(query)}" if query else path
