"""What an `--event-handler [FILTER=]CMD` says: which events, which command.

Rules: FILTER is a comma-separated list of `member-join`, `member-leave`,
`member-failed`, `member-update`, `member-reap`, `member-suspect`,
`member-recover`, `user` (every user event), `user:NAME` (user events of
that name), `query`, `query:NAME` (queries; the handler's output is the
answer) or `*`; without a filter the handler gets every event. Text
before the first `=` is a filter only if every item of it is one (so a
command containing `=` needs no filter syntax around it). The command is
run by /bin/sh -c; it must be non-empty and at most MAX_COMMAND_BYTES.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_COMMAND_BYTES = 4096
MAX_HANDLERS = 64

MEMBER_FILTERS = {
    "member-join": "joined",
    "member-leave": "left",
    "member-failed": "failed",
    "member-update": "updated",
    "member-reap": "reaped",
    "member-suspect": "suspected",
    "member-recover": "recovered",
}
"""Filter words for membership events, and the MemberEvent kind each matches."""
KIND_NAMES = {kind: word for word, kind in MEMBER_FILTERS.items()}
"""The GOSSIP_EVENT value of each MemberEvent kind (`user` for user events)."""
KIND_NAMES["user"] = "user"
KIND_NAMES["query"] = "query"


@dataclass(frozen=True)
class EventFilter:
    kind: str
    """A MemberEvent kind, or `*`."""
    name: str | None = None
    """For `user:NAME`, the user event's name."""

    def matches(self, kind: str, name: str) -> bool:
        if self.kind == "*":
            return True
        return self.kind == kind and (self.name is None or self.name == name)


@dataclass(frozen=True)
class HandlerSpec:
    filters: tuple[EventFilter, ...]
    command: str
    text: str
    """As the operator wrote it (for logs)."""

    def matches(self, kind: str, name: str) -> bool:
        return any(f.matches(kind, name) for f in self.filters)


def parse_filter(word: str) -> EventFilter | None:
    """One filter item, or None if `word` is not one."""
    if word == "*":
        return EventFilter("*")
    if word in MEMBER_FILTERS:
        return EventFilter(MEMBER_FILTERS[word])
    for kind in ("user", "query"):
        if word == kind:
            return EventFilter(kind)
        if word.startswith(kind + ":") and len(word) > len(kind) + 1:
            return EventFilter(kind, word[len(kind) + 1 :])
    return None


def parse_handler(text: str) -> HandlerSpec:
    """`[FILTER=]CMD` as a HandlerSpec; ValueError naming the problem."""
    if not isinstance(text, str):
        raise ValueError("an event handler is a string [FILTER=]CMD")
    head, sep, rest = text.partition("=")
    filters: list[EventFilter] = []
    command = text
    if sep:
        parsed = [parse_filter(w.strip()) for w in head.split(",")]
        if all(f is not None for f in parsed):
            filters = [f for f in parsed if f is not None]
            command = rest
    command = command.strip()
    if not command:
        raise ValueError(f"event handler {text!r} has no command")
    if len(command.encode()) > MAX_COMMAND_BYTES:
        raise ValueError(f"an event handler's command is at most {MAX_COMMAND_BYTES} bytes")
    return HandlerSpec(tuple(filters) or (EventFilter("*"),), command, text)
