"""The transmit-limited broadcast queue."""

from __future__ import annotations

from gossip.core.membership.broadcast import BroadcastQueue


def _payload(tag: str, size: int = 10) -> bytes:
    return tag.encode().ljust(size, b".")


def test_newest_updates_go_first_and_each_is_sent_at_most_limit_times() -> None:
    q = BroadcastQueue()
    for name in "abc":
        q.enqueue(name, _payload(name))
    assert q.take(1000, limit=2) == [_payload("c"), _payload("b"), _payload("a")]
    q.enqueue("d", _payload("d"))
    # never-sent "d" first, then the others
    assert q.take(1000, limit=2)[0] == _payload("d")
    assert q.take(1000, limit=2) == [_payload("d")]
    assert q.take(1000, limit=2) == []
    assert len(q) == 0


def test_least_sent_goes_first_when_room_is_short() -> None:
    q = BroadcastQueue()
    q.enqueue("a", _payload("a"))
    assert q.take(10, limit=5) == [_payload("a")]
    q.enqueue("b", _payload("b"))
    assert q.take(10, limit=5) == [_payload("b")]
    q.enqueue("c", _payload("c"))
    assert q.take(30, limit=5) == [_payload("c"), _payload("b"), _payload("a")]


def test_a_newer_update_about_the_same_member_replaces_the_older() -> None:
    q = BroadcastQueue()
    q.enqueue("a", _payload("old"))
    q.enqueue("a", _payload("new"))
    assert len(q) == 1
    assert q.take(1000, limit=3) == [_payload("new")]
    assert q.pending("a", _payload("new")) and not q.pending("a", _payload("old"))


def test_take_never_exceeds_the_room_and_skips_what_does_not_fit() -> None:
    q = BroadcastQueue()
    q.enqueue("big", _payload("big", 500))
    q.enqueue("small", _payload("small", 50))
    taken = q.take(100, limit=3)
    assert taken == [_payload("small", 50)]
    assert q.pending("big", _payload("big", 500))


def test_many_replacements_do_not_grow_the_queue_without_bound() -> None:
    q = BroadcastQueue()
    for i in range(10_000):
        q.enqueue(f"m{i % 10}", _payload(str(i)))
    assert len(q) == 10
    assert q._entries <= 2 * 10 + 64 + 1
    assert len(q.take(10_000, limit=1)) == 10


def test_copies_heard_count_as_sends_only_under_a_backlog_and_only_with_an_ident() -> None:
    def queue(backlog_bytes: int) -> BroadcastQueue:
        q = BroadcastQueue(backlog_bytes)
        q.enqueue("a", _payload("a"), b"id-a")
        q.enqueue("me", _payload("me"))  # no ident: never counted
        return q

    calm = queue(backlog_bytes=1000)
    busy = queue(backlog_bytes=0)
    for q in (calm, busy):
        q.heard([b"id-a"] * 3 + [_payload("me")] * 3)
    # limit 4: under a backlog "a" has 3 heard copies, so one send ends it
    assert busy.take(1000, limit=4) == [_payload("me"), _payload("a")]
    assert busy.take(1000, limit=4) == [_payload("me")]
    assert calm.take(1000, limit=4) == [_payload("me"), _payload("a")]
    assert calm.take(1000, limit=4) == [_payload("me"), _payload("a")]
    assert busy.pending_bytes == len(_payload("me"))
