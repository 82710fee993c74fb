"""Follow a key or a prefix through the store's long-poll watches (runtime/store/watch.py).

Rules: every answer carries the version (key) or index (prefix) to pass with the next poll,
so a dropped connection, an agent restart or a 503 loses nothing: the next poll compares the
current state with the last one seen and answers at once if it changed. The first answer is
the current state. Failed polls are retried RETRY_S apart, at most `retries` in a row.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from gossip.client.api import ApiClient, ApiClientError
from gossip.client.kv import key_path, request

WAIT_S = 30.0
RETRY_S = 1.0
SLACK_S = 10.0  # the client waits this much longer than the agent's long poll


def _path(key: str | None, prefix: str | None, seen: str, wait: float) -> str:
    if key is not None:
        return key_path(key, watch=seen, wait=f"{wait:g}")
    return "/v1/kv?" + urlencode({"prefix": prefix or "", "watch": seen, "wait": f"{wait:g}"})


def changes(
    client: ApiClient,
    key: str | None = None,
    prefix: str | None = None,
    wait: float = WAIT_S,
    retries: int = 30,
) -> Iterator[dict[str, Any]]:
    """Each new state of the key (a record as JSON) or the prefix (a listing with its index)."""
    if (key is None) == (prefix is None):
        raise ApiClientError("watch a KEY or a --prefix, not both")
    seen, failures = "", 0
    marker = "version" if key is not None else "index"
    while True:
        try:
            status, _, raw = request(
                client, "GET", _path(key, prefix, seen, wait), None, wait + SLACK_S
            )
            answer: dict[str, Any] = json.loads(raw) if status == 200 else {}
        except (ApiClientError, http.client.HTTPException, ValueError):
            status, raw = 0, b""  # unreachable, or an answer cut short: poll again
        if status == 200:
            failures = 0
            if answer.get("changed"):
                seen = str(answer[marker])
                yield answer
            continue
        if 400 <= status < 500 and status != 429:
            raise ApiClientError(f"HTTP {status}: {raw.decode(errors='replace').strip()}")
        failures += 1
        if failures > retries:
            raise ApiClientError(f"watch failed {failures} times in a row (last HTTP {status})")
        time.sleep(RETRY_S)
