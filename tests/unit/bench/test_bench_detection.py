"""The detection benchmark measures simulated crashes and prints its figures."""

from gossip.bench.detection import measure, report


def test_the_benchmark_reports_first_and_last_detection_of_every_run() -> None:
    figures = measure(5, "local", 0.1, range(1, 6))
    assert figures.runs == 5 and figures.undetected == 0 and figures.false_deaths == 0
    first, every, spread = figures.first, figures.every, figures.spread
    assert 0 < first[0] <= every[0] and first[2] <= every[2]
    assert 0 <= spread[0] <= spread[1] <= spread[2]
    assert figures.longest_timeout == 18.0
    text = report(figures, 5, "local", 0.1, 1.0)
    assert "spread (last - first)" in text and "false deaths: 0" in text
