"""Liveness rules and the Prometheus text format, without a broker."""

from __future__ import annotations

from types import SimpleNamespace

from worker_probe import parse_exposition

from agents.web import Heartbeat, crashed_agents
from streams.schema import RecordError
import numpy as np

from tradeguard.core.blocks import DecisionBlock
from tradeguard.runtime.metrics import EngineMetrics


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


def test_an_actor_the_supervisor_replaced_no_longer_fails_liveness():
    dead, successor = _actor(crashed=True), _actor()
    agent = _agent("record-path", dead, successor)  # the dead one lingers until collected
    agent.supervisor = SimpleNamespace(_services=[successor])
    app = SimpleNamespace(agents={"record-path": agent})
    assert crashed_agents(app) == []
    agent.supervisor._services = [dead]  # not replaced yet
    assert crashed_agents(app) == ["record-path"]


def test_a_heartbeat_older_than_the_limit_is_a_stall_and_late_beats_are_lag():
    hb = Heartbeat(interval_s=1.0, started=0.0)
    for t in (1.0, 2.0, 3.01):
        hb.beat(t)
    assert round(hb.lag_s, 3) == 0.01
    assert not hb.stalled(now=12.9, after_s=10.0)
    assert hb.stalled(now=13.1, after_s=10.0)
    hb.beat(20.0)
    assert round(hb.lag_s, 3) == 15.99 and not hb.stalled(now=20.5, after_s=10.0)


def _decisions(actions, order_ts, version="hst-v1/w3;logreg-v1+0"):
    n = len(actions)
    return DecisionBlock(order_id=[f"o{i}" for i in range(n)], account_id=["a"] * n,
                         ticker=["7203"] * n, side=["buy"] * n,
                         action=np.array(actions, dtype=np.int8), score=np.zeros(n),
                         reasons=[b"[]"] * n, model_version=[version] * n,
                         policy_version="policy-x", order_ts=np.array(order_ts, dtype=np.int64))


def test_engine_metrics_render_as_valid_exposition():
    m = EngineMetrics()
    m.observe_decisions(_decisions([0, 0, 2], [1000, 1000, 1000]), now_ms=1030)
    m.observe_step(records=3, decided=3, seconds=0.002)
    m.observe_deadletter("orders", RecordError("malformed JSON: unexpected end"))
    m.observe_deadletter("orders", RecordError("required field is missing", "ticker"))
    m.observe_controls("controls.tickers", [{"action": "halt_buys"}, {"action": "release"}])
    samples = parse_exposition(m.exposition().decode())
    ours = {name for name, _ in samples if name.startswith("tradeguard_")}
    assert ours and all(name.startswith(("tradeguard_", "process_", "python_"))
                        for name, _ in samples)
    get = lambda name, **labels: samples[(name, frozenset(labels.items()))]  # noqa: E731
    assert get("tradeguard_decisions_total", action="allow") == 2
    assert get("tradeguard_decisions_total", action="hold") == 0
    assert get("tradeguard_decisions_total", action="block") == 1
    assert get("tradeguard_decision_latency_seconds_bucket", le="0.025") == 0
    assert get("tradeguard_decision_latency_seconds_bucket", le="0.05") == 3
    assert abs(get("tradeguard_decision_latency_seconds_sum") - 0.09) < 1e-9
    assert get("tradeguard_batch_size_count", agent="engine") == 1
    assert get("tradeguard_deadletter_total", topic="orders", reason="missing_field") == 1
    assert get("tradeguard_deadletter_total", topic="orders", reason="malformed_json") == 1
    assert get("tradeguard_invalid_records_total", topic="orders") == 2
    assert get("tradeguard_model_info", version="hst-v1/w3;logreg-v1+0") == 1
    assert get("tradeguard_halts_published_total") == 1
    assert get("tradeguard_halt_releases_published_total") == 1
    # prometheus_client's own collectors come with it: process and garbage collector.
    assert any(name.startswith("process_") for name, _ in samples)
    assert any(name.startswith("python_gc_") for name, _ in samples)


def test_a_new_model_version_replaces_the_old_info_series():
    m = EngineMetrics()
    m.observe_decisions(_decisions([0], [0], "v1"), now_ms=1)
    m.observe_decisions(_decisions([0], [0], "v2"), now_ms=1)
    samples = parse_exposition(m.exposition().decode())
    versions = {dict(labels)["version"] for name, labels in samples
                if name == "tradeguard_model_info"}
    assert versions == {"v2"}
