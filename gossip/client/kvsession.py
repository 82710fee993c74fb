"""A store client session: each write of the session outranks the session's earlier ones.

Rules: a KvSession remembers the greatest version its writes were answered with and
passes it, as the text the agent gave, as `after` with every write (PUT/DELETE
?after=VERSION, gossip.core.store.session), so the coordinating
agent stamps the write above it, whichever agent coordinated the earlier writes and
however their store clocks differ. Versions are compared by (wall_ms, counter); an
answer whose version does not parse leaves the remembered one as it was. Reads are
plain reads. Errors are those of gossip.client.kv (ApiClientError, one line).
"""

from __future__ import annotations

import json

from gossip.client.api import ApiClient
from gossip.client.kv import call, key_path

MAX_VERSION_CHARS = 300


def version_order(text: str) -> tuple[int, int] | None:
    """(wall_ms, counter) of a version as the store answers it ("W.C@node"); None if not one."""
    if len(text) > MAX_VERSION_CHARS:
        return None
    wall, dot, counter = text.split("@", 1)[0].partition(".")
    if not (dot and wall.isascii() and wall.isdigit() and counter.isascii() and counter.isdigit()):
        return None
    return int(wall), int(counter)


class KvSession:
    def __init__(self, client: ApiClient, after: str | None = None) -> None:
        self.client = client
        self.after: str | None = None
        """The greatest version this session's writes were given (sent as `after`)."""
        if after is not None:
            self.saw(after)

    def saw(self, version: str) -> None:
        """Remember `version` if it is greater than the one remembered."""
        order = version_order(version)
        if order is None:
            return
        known = None if self.after is None else version_order(self.after)
        if known is None or order > known:
            self.after = version

    def put(self, key: str, value: bytes, consistency: str = "quorum") -> str:
        """Write `value`; its version."""
        return self._write("PUT", key, value, consistency)

    def delete(self, key: str, consistency: str = "quorum") -> str:
        """Delete `key`; the tombstone's version."""
        return self._write("DELETE", key, None, consistency)

    def get(self, key: str, consistency: str = "quorum") -> bytes:
        return call(self.client, "GET", key_path(key, consistency=consistency))

    def _write(self, method: str, key: str, body: bytes | None, consistency: str) -> str:
        query = {"consistency": consistency} | ({"after": self.after} if self.after else {})
        answer = json.loads(call(self.client, method, key_path(key, **query), body))
        version = str(answer["version"])
        self.saw(version)
        return version
