"""`gossip why` prints the merged story one line per record, and says who did not answer."""

from __future__ import annotations

from gossip.cli.insight_cmd import story_text


def test_the_story_prints_time_observer_event_and_detail_and_names_the_silent() -> None:
    answer = {
        "member": "b",
        "observers": {"a": "ok", "c": "no answer: timeout"},
        "story": [
            {
                "time_ms": 1_767_225_600_250,
                "observer": "a",
                "member": "b",
                "event": "suspected",
                "accuser": "a",
                "observer_health": 2,
            },
        ],
    }
    lines = story_text(answer).splitlines()
    assert lines[0] == "what the cluster saw of b:"
    assert lines[1].split() == [
        "00:00:00.250",
        "a",
        "suspected",
        "accuser=a",
        "observer_health=2",
    ]
    assert lines[2].strip() == "(c: no answer: timeout)"


def test_an_empty_story_says_so() -> None:
    text = story_text({"member": "b", "observers": {"a": "ok"}, "story": []})
    assert "(nothing recorded)" in text
