"""Member filters for `GET /v1/members` (and so `gossip members`): status, name, tags.

Rules: a filter is built from the request's query parameters, all optional and
all of which must hold: `status` (a state label, or several separated by
commas; `failed` is the same as `dead`), `name` (a regular expression) and
`tag.KEY` (a regular expression for the value of tag KEY; a member without
the tag does not match). Expressions match the whole string (fullmatch), so
`web` matches only "web" and `web-.*` every name starting "web-". Any other
parameter, an unknown status, a bad or over-long expression is a
FilterError naming it. Patterns are untrusted: each is bounded in length, and
matching runs under one time budget per request (the `regex` engine's
timeout), so no pattern can stall the agent; the inputs are bounded by the
protocol already (names and tags have byte limits). The `regex` engine (~1.4 MiB)
loads with the first pattern, not with the agent.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gossip.core.types import MemberInfo, MemberState

MAX_PATTERN_CHARS = 256
MAX_TAG_FILTERS = 16
MATCH_BUDGET_S = 0.25
TAG_PREFIX = "tag."
STATUS_ALIASES = {"failed": MemberState.DEAD}

if TYPE_CHECKING:
    import regex


class FilterError(ValueError):
    """A filter parameter that cannot be used; the message names it."""


@dataclass(frozen=True)
class MemberFilter:
    states: frozenset[MemberState] | None = None
    name: regex.Pattern[str] | None = None
    tags: tuple[tuple[str, regex.Pattern[str]], ...] = ()

    def select(self, members: Iterable[MemberInfo]) -> list[MemberInfo]:
        """The members that pass every filter; FilterError if matching runs over
        the time budget (a pattern that backtracks badly)."""
        deadline = time.monotonic() + MATCH_BUDGET_S
        return [m for m in members if self._passes(m, deadline)]

    def _passes(self, m: MemberInfo, deadline: float) -> bool:
        if self.states is not None and m.state not in self.states:
            return False
        if self.name is not None and not _fullmatch(self.name, m.name, deadline, "name"):
            return False
        for key, pattern in self.tags:
            value = m.tags.get(key)
            if value is None or not _fullmatch(pattern, value, deadline, TAG_PREFIX + key):
                return False
        return True


def parse_filter(query: Mapping[str, str]) -> MemberFilter:
    """The filter the query parameters ask for (FilterError names a bad one)."""
    states: frozenset[MemberState] | None = None
    name = None
    tags: list[tuple[str, regex.Pattern[str]]] = []
    for key, value in sorted(query.items()):
        if key == "status":
            states = frozenset(_state(s) for s in value.split(","))
        elif key == "name":
            name = _compile(key, value)
        elif key.startswith(TAG_PREFIX) and len(key) > len(TAG_PREFIX):
            if len(tags) == MAX_TAG_FILTERS:
                raise FilterError(f"at most {MAX_TAG_FILTERS} tag filters")
            tags.append((key[len(TAG_PREFIX) :], _compile(key, value)))
        else:
            raise FilterError(f"{key[:40]}: unknown filter (status, name, tag.KEY)")
    return MemberFilter(states, name, tuple(tags))


def _state(label: str) -> MemberState:
    label = label.strip().lower()
    if label in STATUS_ALIASES:
        return STATUS_ALIASES[label]
    for state in MemberState:
        if state.label == label:
            return state
    known = ", ".join([s.label for s in MemberState] + list(STATUS_ALIASES))
    raise FilterError(f"status: {label[:20]!r} is not one of {known}")


def _compile(param: str, pattern: str) -> regex.Pattern[str]:
    if len(pattern) > MAX_PATTERN_CHARS:
        raise FilterError(f"{param[:40]}: pattern longer than {MAX_PATTERN_CHARS} characters")
    import regex  # deferred: most agents never filter by pattern

    try:
        return regex.compile(pattern, regex.VERSION0)
    except (regex.error, ValueError, OverflowError, RecursionError) as exc:
        raise FilterError(f"{param[:40]}: invalid regular expression: {exc}") from None


def _fullmatch(pattern: regex.Pattern[str], text: str, deadline: float, param: str) -> bool:
    left = deadline - time.monotonic()
    try:
        if left <= 0:
            raise TimeoutError
        return pattern.fullmatch(text, timeout=left) is not None
    except TimeoutError:
        raise FilterError(f"{param[:40]}: pattern too slow to match (it backtracks)") from None
