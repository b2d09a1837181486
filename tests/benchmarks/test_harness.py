"""The benchmark harness's pure parts: percentiles, histogram, lag, workload, report shape.

No broker, no timing assertions: CI runs ``python -m benchmarks --quick`` for
the figures; this only keeps the arithmetic and the result format honest.
"""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest

from benchmarks import profile, report, stats, workload
from benchmarks.__main__ import _missing, _plain
from benchmarks.peers import shape
from streams.records import AUTH_EVENT, ORDER, TRADE

pytestmark = pytest.mark.quick  # pure and fast: `python -m pytest -m quick`


@pytest.mark.parametrize("module", [stats, workload, report, profile, shape])
def test_docstring_examples_run(module):
    failed, attempted = doctest.testmod(module,
                                        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert failed == 0 and attempted > 0, (failed, attempted)


def test_percentiles_are_exact_order_statistics():
    rng = np.random.default_rng(3)
    ns = rng.lognormal(15, 1, 10_001).astype(np.int64)
    s = stats.LatencyHistogram.from_ns(ns).summary()
    ordered = np.sort(ns)
    for key, q in stats.PERCENTILES.items():
        expected = np.percentile(ordered, q, method="inverted_cdf")
        assert s[key] == round(float(expected) / 1e6, 3), key
    assert s["max_ms"] == round(ordered[-1] / 1e6, 3) and s["count"] == len(ns)


def test_histogram_buckets_hold_every_sample_within_their_relative_width():
    rng = np.random.default_rng(4)
    ns = rng.integers(1_000, 10**10, 5_000)
    h = stats.LatencyHistogram.from_ns(ns)
    buckets = h.buckets()
    assert sum(c for _, c in buckets) == len(ns)
    uppers = [u for u, _ in buckets]
    assert uppers == sorted(uppers)
    idx = h.bucket_index(ns)
    upper = np.array([h.bucket_upper_ns(i) for i in idx])
    assert (ns <= upper).all() and (ns > upper / (1 + 2 / h.sub_buckets)).all()


def test_lag_is_steady_under_capacity_and_growing_over_it():
    sent = np.arange(0, 4_000_000_000, 200_000)  # 5k/s for 4 s
    steady = stats.lag_verdict(sent, sent + 2_000_000, 5_000)
    assert steady.sustained and steady.lag_end <= steady.lag_mid + steady.tolerance
    behind = stats.lag_verdict(sent, np.arange(len(sent)) * 300_000, 5_000)  # 3.3k/s
    assert not behind.sustained and behind.lag_end > behind.lag_mid


def test_every_workload_record_is_valid_for_the_contract():
    w = workload.Workload.build(accounts=300, orders=2_000, seed=2)
    for login in w.logins:
        AUTH_EVENT.validate(login)
    for trade in w.trades:
        TRADE.validate(trade)
    for i, order in enumerate(w.orders):
        ORDER.validate({**order, "order_id": workload.order_id("r5000", i), "ts": 1_760_000_000_000})
    run, _, seq = workload.order_id("r5000", 42).rpartition("-")
    assert (run, int(seq)) == ("r5000", 42)


CANNED = {
    "started_utc": "2026-01-01T00:00:00Z", "mode": "quick", "command": "python -m benchmarks --quick",
    "machine": {"cores": 2, "cpu_model": "x", "python": "3.11", "commit": "abc",
                "load_avg_start": [1.0, 1.0, 1.0], "versions": {}},
    "load_avg_end": [1.0, 1.0, 1.0], "errors": [],
    "e2e": {"broker_floor": {"p50_ms": 3.0, "p99_ms": 5.0}, "max_sustained_offered_per_s": 1000,
            "missing_decisions": 0,
            "steps": [{"offered_per_s": 5000, "decided_per_s": np.float64(4900.0), "count": 10,
                       "p50_ms": 2.0, "p99_ms": 4.0, "p999_ms": 30.0, "max_ms": 40.0,
                       "lag_mid": 3, "lag_end": 4, "sustained": True, "worker_rss_bytes": 2**28,
                       "load_avg_1m": 1.0, "missing": 0}]},
    "throughput": {
        "tradeguard": {"orders": 100, "decided": 100, "missing": 0, "duplicates": 0,
                       "orders_per_s": 50_000.0, "startup_s": 5.0, "rss_peak_bytes": 2**28,
                       "load_avg_1m": 1.0},
        "quix": {"orders": 100, "decided": 100, "missing": 0, "duplicates": 0,
                 "orders_per_s": 25_000.0, "startup_s": 5.0, "rss_peak_bytes": 2**26,
                 "load_avg_1m": 1.0},
        "faust_naive": {"skipped": "not installed"}},
    "cost": {"batch_sizes": {"1024": {"core_us_per_order": 4.0, "decode_us_per_order": 1.0,
                                      "worker_total_us_per_order": 6.0}}},
    "mixed": {"orders": 100, "decided": 100, "missing": 0, "duplicates": 0, "orders_per_s": 19_000.0,
              "records_per_order": 6.0, "records": {"orders": 100, "market.trades": 400},
              "input_records_per_s": 114_000.0, "load_avg_1m": 1.0},
    "memory": {"100000": {"bytes_per_account": 300, "array_bytes_per_account": 320,
                          "rss_bytes_per_account": 600, "snapshot_bytes_per_account": 380},
               "1000000": {"bytes_per_account": 248, "array_bytes_per_account": 260,
                           "rss_bytes_per_account": 440, "snapshot_bytes_per_account": 280}},
}


def test_targets_say_met_or_missed_and_by_how_much():
    rows = {r["key"]: r for r in report.targets(CANNED)}
    assert set(rows) == {t[0] for t in report.TARGETS}
    assert rows["ratio_to_quix"]["measured"] == 2.0 and rows["ratio_to_quix"]["status"] == "met"
    assert rows["ratio_to_faust_naive"]["status"] == "not measured"
    assert (rows["p99_ms_at_5k"]["status"], rows["p99_ms_at_5k"]["by"]) == ("met", "3.75x under")
    assert (rows["p999_ms_at_5k"]["status"], rows["p999_ms_at_5k"]["by"]) == ("met", "1.00x under")
    assert (rows["mixed_orders_per_s"]["status"], rows["mixed_orders_per_s"]["by"]) == \
        ("missed", "1.05x short")
    assert (rows["worker_total_us"]["status"], rows["bytes_per_account"]["measured"]) == \
        ("missed", 248)
    assert rows["p99_ms_at_1k"]["status"] == "not measured"


def test_result_json_and_table_have_the_keys_the_issue_names():
    # As `python -m benchmarks` nests them: the broker-backed parts per broker.
    per_broker = {k: CANNED[k] for k in ("e2e", "throughput", "mixed")}
    results = {**{k: v for k, v in CANNED.items() if k not in per_broker},
               "brokers": {"kafka": {**per_broker, "targets": report.targets(CANNED)}}}
    text = json.dumps(results, default=_plain)
    for key in ("orders_per_s", "p50_ms", "p99_ms", "p999_ms", "max_ms", "us_per_order",
                "bytes_per_account", '"quix"', '"faust_naive"', '"machine"', '"targets"'):
        assert key in text, key
    table = report.markdown(results)
    assert "## On Apache Kafka" in table and "### Targets" in table
    assert "| tradeguard | 50,000 | 1.00 |" in table
    assert "skipped: not installed" in table
    assert _missing(results["brokers"]["kafka"]) == 0


def test_after_the_first_second_takes_only_orders_sent_a_second_or_more_after_the_first():
    from benchmarks.e2e import _after_first_second
    ms = 1_000_000
    sent = np.array([0, 500, 999, 1_000, 1_500, 2_000], np.int64) * ms + 10**12
    lat = np.array([300, 300, 300, 2, 4, 6], np.int64) * ms  # the first second's stall
    recv = sent + lat
    recv[-1] = 0  # never decided: left out, as in the whole run's figure
    later = _after_first_second(sent, recv)
    assert later["count"] == 2
    assert later["max_ms"] == pytest.approx(4, rel=0.01)
    assert later["p50_ms"] < 5
    assert _after_first_second(sent[:3], recv[:3]) == {}  # a run shorter than a second
