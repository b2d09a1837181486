"""Baselines on a small generated session, and the report built from them (no broker)."""

from __future__ import annotations

import json

import pytest

from tradeguard.scorecard import RiverRules, StaticRules, run_baselines, score, session_orders
from tradeguard.scorecard.baselines import anomaly_scores, no_engine, river_anomaly, static_rules
from tradeguard.scorecard.report import build_report, markdown, write_report
from tradeguard.simulator import generate, parse_scenario

SCENARIO = {  # two minutes, a small crew pumping one penny stock, a news rush
    "name": "tiny-pump", "seed": 3, "session": {"duration_s": 240}, "warmup": {"days": 2},
    "population": {"activity_scale": 10.0, "index_holders": {"count": 60},
                   "active_traders": {"count": 40}, "day_traders": {"count": 10}},
    "campaigns": [{"name": "crew", "start_s": 30, "accesses": 8, "trade_rate": 0.5,
                   "wave_spread_s": 30, "order_pace_s": 3, "accomplices": 1,
                   "preposition_s": 20, "dump_after_s": 120}],
    "negatives": [{"kind": "news_rush", "name": "news", "start_s": 60, "accounts": 6,
                   "window_s": 60, "tier": "small"},
                  {"kind": "new_device", "name": "phones", "start_s": 0, "accounts": 8,
                   "window_s": 200}],
}


@pytest.fixture(scope="module")
def session():
    return generate(parse_scenario(SCENARIO))


@pytest.fixture(scope="module")
def orders(session):
    return session_orders(session.records, session.open_ms)


def test_no_engine_stops_nothing(session, orders):
    report = score(orders, session.truth, no_engine(session))
    assert report["orders"]["fraudulent"] == len(session.truth.fraud_orders) > 0
    assert report["orders"]["fraud_stopped"] == 0 and report["orders"]["undecided"] == 0
    assert report["tickers"]["targeted_halted"] == 0
    assert report["accounts"]["stopped_before_first_fraud_buy"] == 0


def test_static_halt_comes_after_the_report_delay(session, orders):
    (target,) = session.truth.tickers
    buys = sorted(o.ts for o in session.truth.fraud_orders if o.side == "buy")
    rules = StaticRules(report_after_fraud_buys=2, halt_delay_min=0.5, mfa_block_share=0.0)
    outcome = static_rules(session, rules)
    (halt,) = outcome.halts
    assert halt.ts == buys[1] + 30_000 and halt.source == "manual"
    t = score(orders, session.truth, outcome)["tickers"]["targeted"][target.ticker]
    assert t["fraud_buys_to_halt"] == sum(ts < halt.ts for ts in buys) >= 2
    halted_buys = [o for o in orders if o["ticker"] == target.ticker and o["side"] == "buy"
                   and o["ts"] >= halt.ts]
    assert all(outcome.actions[o["order_id"]] == "block" for o in halted_buys)
    assert not outcome.account_actions  # MFA refuses nobody at share 0


def test_static_halt_needs_the_report(session):
    rules = StaticRules(report_after_fraud_buys=10_000)
    assert static_rules(session, rules).halts == []


def test_mfa_refuses_new_device_logins_of_enrolled_accounts(session, orders):
    outcome = static_rules(session, StaticRules(report_after_fraud_buys=10_000,
                                                mfa_block_share=1.0))
    enrolled = {r["account_id"] for t, r in session.records
                if t == "auth.events" and r["event"] == "mfa_challenge_passed"}
    refused = {a.account_id for a in outcome.account_actions}
    assert refused and refused <= enrolled
    assert {a.action for a in outcome.account_actions} == {"block_login"}
    # New phones are refused too: device-bound MFA cannot tell a customer from an attacker.
    phones = next(n for n in session.truth.negatives if n.name == "phones")
    report = score(orders, session.truth, outcome)
    assert report["accounts"]["false_account_actions"] == len(refused - {
        a.account_id for a in session.truth.accounts})
    assert report["accounts"]["false_account_actions_by_negative"]["phones"] == len(
        refused & set(phones.accounts)) > 0
    assert report["accounts"]["taken_over_stopped_ever"] > 0
    # Blocked orders are exactly those placed on the sessions of the refused logins.
    refused_logins = {(a.account_id, a.ts) for a in outcome.account_actions}
    refused_sessions = {r["session_id"] for t, r in session.records if t == "auth.events"
                        and r["event"] == "login_success"
                        and (r["account_id"], r["ts"]) in refused_logins}
    blocked = {i for i, a in outcome.actions.items() if a == "block"}
    assert blocked == {o["order_id"] for o in orders if o["session_id"] in refused_sessions}


def test_river_anomaly_scores_are_deterministic_and_cold_until_a_window(session, orders):
    cold = anomaly_scores(session)  # the engine's window: far more orders than this session
    assert set(cold) == {o["order_id"] for o in orders} and set(cold.values()) == {0.0}
    warm = anomaly_scores(session, window=2)
    assert warm == anomaly_scores(session, window=2)
    assert all(0.0 <= s <= 1.0 for s in warm.values()) and max(warm.values()) > 0


def test_river_anomaly_holds_at_or_above_the_threshold(session, orders):
    scores = anomaly_scores(session, window=2)
    everything = river_anomaly(session, RiverRules(threshold=0.0), scores)
    assert set(everything.actions.values()) == {"hold"}
    nothing = river_anomaly(session, RiverRules(threshold=1.01), scores)
    assert set(nothing.actions.values()) == {"allow"} and not nothing.account_actions
    mid = river_anomaly(session, RiverRules(threshold=0.5), scores)
    assert {i for i, a in mid.actions.items() if a == "hold"} == {
        i for i, s in scores.items() if s >= 0.5}
    first_hold = {}
    for o in orders:
        if scores[o["order_id"]] >= 0.5:
            first_hold.setdefault(o["account_id"], o["ts"])
    assert {(a.account_id, a.ts) for a in mid.account_actions} == set(first_hold.items())
    assert not mid.halts


def test_report_json_and_markdown_hold_every_section(session, tmp_path):
    baselines = run_baselines(session)
    engine = baselines["static_rules_2025"][0]  # any outcome will do as "the engine" here
    report = build_report(session, "a test", engine, baselines,
                          latency={"orders": 0, "p50": None, "p99": None, "max": None},
                          run={"speed": 20.0}, halts=[])
    report["plots_skipped"] = "no plots in this test"
    json_path, md_path = write_report(report, tmp_path)
    loaded = json.loads(json_path.read_text())
    for key in ("orders", "tickers", "accounts", "latency", "baselines"):
        assert key in loaded
    assert set(loaded["baselines"]) == {"no_engine", "static_rules_2025", "river_anomaly"}
    for b in loaded["baselines"].values():
        assert {"orders", "tickers", "accounts", "assumptions"} <= set(b)
    text = md_path.read_text()
    assert text == markdown(report)
    for heading in ("## Orders", "## Targeted tickers", "## Taken-over accounts", "## Latency",
                    "## Baselines", "no plots in this test"):
        assert heading in text


def test_plots_are_written(session, tmp_path):
    pytest.importorskip("matplotlib")
    from tradeguard.scorecard.plots import write_plots

    baselines = run_baselines(session, river=RiverRules(window=2))
    engine = baselines["river_anomaly"][0]  # any outcome with scores will do here
    report = build_report(session, "", engine, baselines, latency={}, run={}, halts=[])
    names = write_plots(session, report, engine, tmp_path)
    assert "timeline.png" in names and "precision-recall.png" in names
    assert len(names) == len(session.truth.tickers) + 2
    for name in names:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
