"""Item sources: where an ownership service gets declared items besides its settings.

Rules:
- A source is an async callable returning item names; the service polls it every
  `source_interval` and keeps the last names when it fails or times out.
- store_prefix_source names items after the replicated store's keys under a prefix. It pages
  through every key, at most SOURCE_PAGE at a time (the most a replica answers in one scan),
  each page starting after the last; more than MAX_ITEMS names, or a listing that does not
  advance, fail the poll instead of declaring a partial set.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from gossip.runtime.ownership.settings import MAX_ITEMS

ItemSource = Callable[[], Awaitable[Iterable[str]]]
"""Polled for more item names, e.g. store_prefix_source(store, "work/")."""

SOURCE_PAGE = 10_000
"""Keys asked of the store per page: the most a replica answers in one scan."""


class PrefixLister(Protocol):
    async def list_page(
        self, prefix: str, limit: int = ..., after: str = ...
    ) -> tuple[list[Any], str | None]: ...


def store_prefix_source(store: PrefixLister, prefix: str, page: int = SOURCE_PAGE) -> ItemSource:
    """Items named by the store's keys under `prefix` (prefix removed), for item_source.
    Pages through every key, `page` keys at a time; more than MAX_ITEMS names fail the poll
    (the last names stay)."""
    if not 0 < page <= SOURCE_PAGE:
        raise ValueError(f"page must be 1..{SOURCE_PAGE}")

    async def source() -> list[str]:
        names: list[str] = []
        after = ""
        while True:
            records, stop = await store.list_page(prefix, page, after)
            names += [r.key[len(prefix) :] for r in records if len(r.key) > len(prefix)]
            if len(names) > MAX_ITEMS:
                raise ValueError(f"more than {MAX_ITEMS} keys under {prefix!r}")
            if stop is None:
                return names
            if stop <= after:
                raise ValueError("the store's listing did not advance")
            after = stop

    return source
