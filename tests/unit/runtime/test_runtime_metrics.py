"""The metrics registry renders Prometheus text and stays bounded."""

from __future__ import annotations

import pytest

from gossip.runtime.metrics import MAX_SERIES_PER_METRIC, Registry


def test_counters_gauges_and_histograms_render_in_prometheus_text() -> None:
    r = Registry()
    c = r.counter("rejected_total", "Rejected.", ("reason",))
    c.inc(labels={"reason": "bad_cbor"})
    c.inc(2, {"reason": "bad_cbor"})
    r.gauge("members", "Members.", ("state",), lambda: {("alive",): 3.0})
    h = r.histogram("rtt_seconds", "RTT.", (0.01, 0.1))
    h.observe(0.005)
    h.observe(0.05)
    h.observe(5)
    text = r.render()
    assert "# TYPE gossip_rejected_total counter\n" in text
    assert 'gossip_rejected_total{reason="bad_cbor"} 3\n' in text
    assert 'gossip_members{state="alive"} 3' in text
    assert 'gossip_rtt_seconds_bucket{le="0.01"} 1' in text
    assert 'gossip_rtt_seconds_bucket{le="0.1"} 2' in text
    assert 'gossip_rtt_seconds_bucket{le="+Inf"} 3' in text
    assert "gossip_rtt_seconds_count 3" in text


def test_label_values_are_escaped_and_series_are_bounded() -> None:
    r = Registry()
    c = r.counter("x_total", "X.", ("reason",))
    c.inc(labels={"reason": 'a"b\nc'})
    assert 'reason="a\\"b\\nc"' in r.render()
    for i in range(MAX_SERIES_PER_METRIC + 50):
        c.inc(labels={"reason": f"r{i}"})
    assert r.render().count("gossip_x_total{") <= MAX_SERIES_PER_METRIC + 1
    assert c.value({"reason": "other"}) >= 50


def test_a_counter_may_be_fetched_twice_but_a_gauge_name_only_once() -> None:
    r = Registry()
    assert r.counter("a_total", "A.") is r.counter("a_total", "A.")
    r.gauge("g", "G.")
    with pytest.raises(ValueError, match="already registered"):
        r.gauge("g", "G.")
