"""Shared value types of the core: addresses, member states and snapshots.

Rules: plain frozen values only; nothing here does work. Every other part of
the project (shell, ownership, store, simulator) speaks in these types.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

Address = tuple[str, int]
"""(host, port). The same port carries UDP datagrams and TCP streams."""


class MemberState(enum.IntEnum):
    """SWIM member states, ordered by precedence at equal incarnation.

    At equal incarnation a higher value wins (suspect beats alive, dead and
    left beat both); a higher incarnation always wins over a lower one.
    """

    ALIVE = 0
    SUSPECT = 1
    DEAD = 2
    LEFT = 3

    @property
    def label(self) -> str:
        return self.name.lower()


def _empty_tags() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """An immutable snapshot of what one node believes about one member."""

    name: str
    address: Address
    state: MemberState
    incarnation: int
    tags: Mapping[str, str] = field(default_factory=_empty_tags)
    state_since: float = 0.0
    """The `now` at which this node set the current state."""

    @property
    def is_alive_or_suspect(self) -> bool:
        return self.state in (MemberState.ALIVE, MemberState.SUSPECT)
