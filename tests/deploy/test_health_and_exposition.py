"""Liveness rules and the Prometheus text format, without a broker."""

from __future__ import annotations

from types import SimpleNamespace

from worker_probe import parse_exposition

from agents.web import Heartbeat, crashed_agents
from streams.schema import RecordError
from tradeguard.runtime.metrics import EngineMetrics, MetricFamily, counter_families, render


def _agent(name: str, *actors, should_stop: bool = False):
    return SimpleNamespace(name=name, should_stop=should_stop, _actors=list(actors))


def _actor(crashed: bool = False, done: bool = False):
    return SimpleNamespace(crashed=crashed, actor_task=SimpleNamespace(done=lambda: done))


def test_a_dead_actor_fails_liveness_until_the_supervisor_restarts_it():
    app = SimpleNamespace(agents={
        "accounts": _agent("accounts", _actor()),
        "tickers": _agent("tickers", _actor(crashed=True)),
        "stopping": _agent("stopping", _actor(done=True), should_stop=True),
    })
    assert crashed_agents(app) == ["tickers"]
    app.agents["tickers"] = _agent("tickers", _actor(done=True))  # task ended without a crash
    assert crashed_agents(app) == ["tickers"]
    app.agents["tickers"] = _agent("tickers", _actor())
    assert crashed_agents(app) == []


def test_a_heartbeat_older_than_the_limit_is_a_stall_and_late_beats_are_lag():
    hb = Heartbeat(interval_s=1.0, started=0.0)
    for t in (1.0, 2.0, 3.01):
        hb.beat(t)
    assert round(hb.lag_s, 3) == 0.01
    assert not hb.stalled(now=12.9, after_s=10.0)
    assert hb.stalled(now=13.1, after_s=10.0)
    hb.beat(20.0)
    assert round(hb.lag_s, 3) == 15.99 and not hb.stalled(now=20.5, after_s=10.0)


def test_exposition_escapes_labels_and_every_series_has_a_type():
    fam = MetricFamily("tradeguard_x_total", "counter", 'help with "quotes"\nand a newline')
    fam.add(3, topic='a"b\\c\nd')
    text = render([fam])
    assert '# HELP tradeguard_x_total help with "quotes"\\nand a newline' in text
    assert 'tradeguard_x_total{topic="a\\"b\\\\c\\nd"} 3' in text
    samples = parse_exposition(text)
    assert list(samples.values()) == [3.0]


def test_engine_metrics_render_as_valid_exposition():
    m = EngineMetrics()
    m.observe_decisions([{"order_ts": 1000, "model_version": "v1"}] * 3, now_ms=1030)
    m.observe_batch("accounts", 3)
    m.observe_deadletter("orders", RecordError("malformed JSON: unexpected end"))
    m.observe_deadletter("orders", RecordError("required field is missing", "ticker"))
    fams = counter_families({"orders": 3, "decision:allow": 2, "decision:block": 1,
                             "deadletter:orders": 2}) + m.families()
    samples = parse_exposition(render(fams))
    assert all(name.startswith("tradeguard_") for name, _ in samples)
    get = lambda name, **labels: samples[(name, frozenset(labels.items()))]  # noqa: E731
    assert get("tradeguard_decisions_total", action="hold") == 0
    assert get("tradeguard_decision_latency_seconds_bucket", le="0.025") == 0
    assert get("tradeguard_decision_latency_seconds_bucket", le="0.05") == 3
    assert get("tradeguard_decision_latency_seconds_sum") == 0.09
    assert get("tradeguard_batch_size_count", agent="accounts") == 1
    assert get("tradeguard_deadletter_total", topic="orders", reason="missing_field") == 1
    assert get("tradeguard_deadletter_total", topic="orders", reason="malformed_json") == 1
    assert get("tradeguard_invalid_records_total", topic="orders") == 2
    assert get("tradeguard_model_info", version="v1") == 1
