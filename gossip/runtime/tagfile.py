"""Live tag changes (`gossip tags`, POST /v1/tags), kept in the data directory.

Rules: a change sets some keys and deletes others. Each applied change is
recorded in <data_dir>/tags.json as {"set": {KEY: VALUE}, "deleted": [KEY]},
written atomically, so a restart keeps it. At start the agent's tags are the
flags' and config file's tags, minus the recorded deletions, with the recorded
values laid over them: the later, live change wins key by key, and a key the
operator never touched live still follows the flags. A change is bounded
(MAX_CHANGE_KEYS keys, MAX_KEY_CHARS and MAX_VALUE_CHARS each; the core then
bounds the encoded tags); the file is bounded on read, and a missing,
unreadable or malformed file is no record (a warning line, not a failed start).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gossip.atomicfile import write_atomic

FILE_NAME = "tags.json"
MAX_FILE_BYTES = 64 * 1024
MAX_CHANGE_KEYS = 64
MAX_KEY_CHARS = 128
MAX_VALUE_CHARS = 512


class TagChangeError(ValueError):
    """A tag change, or the file, out of bounds; the message says which part."""


@dataclass(frozen=True)
class TagChange:
    set: Mapping[str, str] = field(default_factory=dict)
    deleted: frozenset[str] = frozenset()

    def apply(self, tags: Mapping[str, str]) -> dict[str, str]:
        kept = {k: v for k, v in tags.items() if k not in self.deleted}
        return {**kept, **self.set}

    def then(self, later: TagChange) -> TagChange:
        """This change followed by `later`, as one change."""
        sets = {k: v for k, v in self.set.items() if k not in later.deleted}
        sets.update(later.set)
        deleted = (self.deleted - later.set.keys()) | later.deleted
        return TagChange(sets, frozenset(deleted))


def tag_change(sets: object, deleted: object) -> TagChange:
    """A change from untrusted values (JSON): TagChangeError names what is wrong."""
    sets = {} if sets is None else sets
    deleted = [] if deleted is None else deleted
    if not isinstance(sets, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in sets.items()
    ):
        raise TagChangeError("set: expected an object of string values")
    if not isinstance(deleted, list) or not all(isinstance(k, str) for k in deleted):
        raise TagChangeError("delete: expected a list of tag names")
    if len(sets) + len(deleted) > MAX_CHANGE_KEYS:
        raise TagChangeError(f"at most {MAX_CHANGE_KEYS} tags in one change")
    for key in [*sets, *deleted]:
        if not 0 < len(key) <= MAX_KEY_CHARS:
            raise TagChangeError(f"tag names must be 1..{MAX_KEY_CHARS} characters")
    for key, value in sets.items():
        if len(value) > MAX_VALUE_CHARS:
            raise TagChangeError(f"tag {key[:40]}: value longer than {MAX_VALUE_CHARS} characters")
    if set(sets) & set(deleted):
        raise TagChangeError("a tag cannot be both set and deleted")
    return TagChange(dict(sets), frozenset(deleted))


def decode(raw: bytes) -> TagChange:
    """The recorded change from the file's bytes (TagChangeError if malformed)."""
    if len(raw) > MAX_FILE_BYTES:
        raise TagChangeError(f"larger than {MAX_FILE_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise TagChangeError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise TagChangeError("expected an object")
    return tag_change(data.get("set"), data.get("deleted"))


def encode(change: TagChange) -> bytes:
    body = {"set": dict(change.set), "deleted": sorted(change.deleted)}
    return json.dumps(body, sort_keys=True, indent=1).encode() + b"\n"


class TagRecord:
    """The recorded change of one data directory (none without a directory)."""

    def __init__(self, data_dir: Path | None) -> None:
        self.path = data_dir / FILE_NAME if data_dir is not None else None
        self.change = TagChange()
        self.problem = ""

    def load(self) -> TagChange:
        """Read the file (once, at start); `problem` says why a bad one was skipped."""
        if self.path is None:
            return self.change
        try:
            with self.path.open("rb") as fh:
                self.change = decode(fh.read(MAX_FILE_BYTES + 1))
        except FileNotFoundError:
            pass
        except (OSError, TagChangeError) as exc:
            self.problem = f"{self.path}: {exc}"
        return self.change

    def record(self, change: TagChange) -> None:
        """Fold `change` into the record and write it (OSError if that fails)."""
        self.change = self.change.then(change)
        if self.path is not None:
            write_atomic(self.path, encode(self.change))


def start_tags(configured: Mapping[str, str], record: TagChange) -> dict[str, str]:
    """The tags an agent starts with: the recorded change laid over the configured tags."""
    return record.apply(configured)
