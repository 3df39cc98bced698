"""The Prometheus text exposition written by rat.core.metrics."""

from __future__ import annotations

import pytest

from rat.core.metrics import Registry


def test_counter_gauge_histogram_render_text_format() -> None:
    reg = Registry()
    requests = reg.counter("rat_requests_total", "Requests.", ("route", "status"))
    requests.inc("/a", "200")
    requests.inc("/a", "200")
    requests.inc('/b"x\n', "500", amount=0.5)
    reg.gauge("rat_up", "Up.", source=lambda: {(): 1.0})
    latency = reg.histogram("rat_latency_seconds", "Latency.", ("route",), buckets=(0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 3.0):
        latency.observe(value, "/a")

    text = reg.render()

    assert "# HELP rat_requests_total Requests.\n# TYPE rat_requests_total counter\n" in text
    assert 'rat_requests_total{route="/a",status="200"} 2\n' in text
    assert 'rat_requests_total{route="/b\\"x\\n",status="500"} 0.5\n' in text
    assert "# TYPE rat_up gauge\nrat_up 1\n" in text
    assert 'rat_latency_seconds_bucket{route="/a",le="0.1"} 2\n' in text  # le is inclusive
    assert 'rat_latency_seconds_bucket{route="/a",le="1"} 3\n' in text
    assert 'rat_latency_seconds_bucket{route="/a",le="+Inf"} 4\n' in text
    assert 'rat_latency_seconds_sum{route="/a"} 3.65\n' in text
    assert 'rat_latency_seconds_count{route="/a"} 4\n' in text


def test_gauge_replace_and_duplicate_names() -> None:
    reg = Registry()
    runs = reg.gauge("rat_runs", "Runs.", ("status",))
    runs.replace({("success",): 3, ("failed",): 1})
    assert 'rat_runs{status="failed"} 1\nrat_runs{status="success"} 3\n' in reg.render()
    with pytest.raises(ValueError, match="twice"):
        reg.counter("rat_runs", "again")
