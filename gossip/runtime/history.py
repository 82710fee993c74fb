"""What this agent saw of each member: a bounded history for `gossip why`.

Rules: one record per verdict or clue about a member (joined, updated,
suspected, failed, refuted, left, reaped, probe timed out; refuted also when
the member is this agent), stamped with the wall clock in milliseconds (so
records of several agents merge into one story) and with this agent's own
health score at that moment (a sick observer explains a false verdict).
At most PER_MEMBER records per member (the oldest go first) and MAX_MEMBERS
members (the least recently touched go first): memory stays bounded
whatever the churn.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

PER_MEMBER = 64
MAX_MEMBERS = 1024


class MemberHistory:
    def __init__(
        self, observer: str, wall_ms: Callable[[], int], health: Callable[[], int]
    ) -> None:
        self.observer = observer
        self._wall_ms = wall_ms
        self._health = health
        self._records: OrderedDict[str, deque[dict[str, Any]]] = OrderedDict()

    def record(self, member: str, event: str, **detail: Any) -> None:
        records = self._records.get(member)
        if records is None:
            if len(self._records) >= MAX_MEMBERS:
                self._records.popitem(last=False)
            records = self._records[member] = deque(maxlen=PER_MEMBER)
        else:
            self._records.move_to_end(member)
        entry = {
            "time_ms": self._wall_ms(),
            "observer": self.observer,
            "member": member,
            "event": event,
            "observer_health": self._health(),
        }
        entry.update(detail)
        records.append(entry)

    def of(self, member: str) -> list[dict[str, Any]]:
        """The records about `member`, oldest first."""
        return list(self._records.get(member, ()))


def merge_story(histories: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Records of several observers as one story, ordered by time (then observer)."""
    story = [r for h in histories for r in h]
    story.sort(key=lambda r: (r.get("time_ms", 0), str(r.get("observer", ""))))
    return story
