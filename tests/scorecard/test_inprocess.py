"""The closed-loop scorecard in one process: deterministic, in event time, answered by the world.

Runs the shipped short scenario (about a second a run) through
``run_in_process``; the responders themselves are tested in
tests/simulator/test_responses.py.
"""

from __future__ import annotations

import dataclasses

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeguard.cli.main import main
from tradeguard.core import InProcessEngine
from tradeguard.scorecard.inprocess import (REPORTING_SEEDS, TUNING_SEEDS, _verdict,
                                            evaluate_in_process, run_in_process)
from tradeguard.scorecard.outcome import Halt, Outcome, session_orders
from tradeguard.scorecard.score import _before_third_buyer, score, score_tickers
from tradeguard.simulator import generate, parse_scenario
from tradeguard.simulator.scenario import ResponsesConfig
from tradeguard.simulator.truth import FraudOrder, GroundTruth, TargetedTicker


def _card(session, result):
    orders = session_orders(session.records, session.open_ms)
    return score(orders, session.truth, result.outcome(), result.first_label_ts)


@pytest.fixture(scope="module")
def fed(short_session):
    """One closed-loop run, with every batch the engine was fed recorded."""
    batches = []
    original = InProcessEngine.run

    def recording(self, records, *args, **kwargs):
        records = list(records)
        batches.append(records)
        return original(self, records, *args, **kwargs)

    InProcessEngine.run = recording
    try:
        result = run_in_process(short_session, ResponsesConfig())
    finally:
        InProcessEngine.run = original
    return result, [x for b in batches for x in b]


def test_the_same_scenario_and_seed_give_the_same_numbers(short_session, fed):
    first, _ = fed
    again = run_in_process(short_session, ResponsesConfig())
    assert orjson.dumps(_card(short_session, again)) == orjson.dumps(_card(short_session, first))
    assert again.injected == first.injected and again.summary() == first.summary()
    assert again.decisions == first.decisions and again.account_controls == first.account_controls


def test_the_loop_answers_the_engine(fed):
    result, _ = fed
    run = result.summary()
    assert run["step_up_answers"].get("mfa_challenge_passed", 0) >= 1, run
    stepped = {c["account_id"] for c in result.account_controls if c["action"] == "step_up"}
    assert {r["account_id"] for t, r in result.injected if t == "auth.events"} <= stepped


def test_answers_are_fed_at_their_own_event_time_in_order(fed):
    result, stream = fed
    assert result.answers_clamped == 0
    ts = [r["ts"] for _, r in stream]
    assert ts == sorted(ts), "the engine was fed out of event-time order"
    fed_ids = {id(r) for _, r in stream}
    for t, r in result.injected:  # every answer fed, after the step-up it answers
        assert id(r) in fed_ids
        if t == "auth.events":
            assert any(c["account_id"] == r["account_id"] and c["ts"] + 10_000 <= r["ts"]
                       for c in result.account_controls if c["action"] == "step_up")


def test_analysts_replace_the_simulators_scripted_labels(short_scenario):
    scenario = dataclasses.replace(
        short_scenario, session=dataclasses.replace(short_scenario.session, duration_s=1_800),
        feedback=dataclasses.replace(short_scenario.feedback, enabled=True, delay_s=60))
    session = generate(scenario)
    scripted = sum(t == "feedback" for t, _ in session.records)
    assert scripted > 0
    result = run_in_process(session, ResponsesConfig(review_delay_s=60))
    assert result.scripted_feedback_left_out == scripted
    labels = [r for t, r in result.injected if t == "feedback"]
    assert labels and all(r["source"].startswith("analyst-") for r in labels)
    kept = run_in_process(session, ResponsesConfig(analysts=False, customers=False))
    assert kept.scripted_feedback_left_out == 0 and kept.injected == []


def test_evaluate_in_process_writes_the_report_without_latency(tmp_path, capsys):
    report = evaluate_in_process("scenarios/short.toml", tmp_path, seed=101)
    assert report["run"]["mode"] == "in-process" and report["scenario"]["seed"] == 101
    assert "not_applicable" in report["latency"]
    text = (tmp_path / "report.md").read_text()
    assert "Not measured: decided in process" in text
    assert "Legitimate orders stopped, hour by hour" in text
    saved = orjson.loads((tmp_path / "report.json").read_bytes())
    assert saved["orders"] == report["orders"]
    targeted = saved["tickers"]["targeted"]
    assert targeted and all("halted_before_third_account_buy" in t for t in targeted.values())
    assert (tmp_path / "engine-records.jsonl").stat().st_size > 0


def test_scorecard_command_prints_one_row_per_scenario_and_seed(tmp_path, capsys):
    assert main(["scorecard", "scenarios/short.toml", "--seeds", "101",
                 "--json", str(tmp_path / "rows.json"), "--markdown"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| short |")]
    assert len(rows) == 1 and rows[0].startswith("| short | 101 |")
    assert "Ahead of a baseline" in out
    saved = orjson.loads((tmp_path / "rows.json").read_bytes())
    assert [(r["name"], r["seed"]) for r in saved] == [("short", 101)]
    assert set(saved[0]["verdicts"]) == {"static_rules_2025", "river_anomaly"}
    assert main(["scorecard", "scenarios/short.toml", "--seeds", "x"]) == 2
    assert "--seeds expects integers" in capsys.readouterr().err


def test_reporting_and_tuning_seeds_are_apart():
    assert not set(REPORTING_SEEDS) & set(TUNING_SEEDS)


# -- the new scorecard fields on hand-made truths ---------------------------------------------

OPEN, T = 1_000_000, "9999"


def _truth(buys):
    """A campaign from OPEN + 10 s (pre-positioning from +5 s); ``buys``: (account, ts)."""
    return GroundTruth("t", 0, 0, OPEN, OPEN + 3_600_000, fraud_orders=[
        FraudOrder(f"b{k}", a, "c", "pump", T, "buy", 1, 1e6, ts)
        for k, (a, ts) in enumerate(buys)], tickers=[
        TargetedTicker(T, "c", "penny", "JP", OPEN + 10_000, OPEN + 5_000,
                       min((ts for _, ts in buys), default=None), None, len(buys), 1e6)])


def _tickers(buys, *halts):
    truth = _truth(buys)
    orders = [{"order_id": o.order_id, "account_id": o.account_id, "ticker": T, "side": "buy",
               "ts": o.ts} for o in truth.fraud_orders]
    return score_tickers(orders, truth, Outcome("x", halts=list(halts)))


def test_halt_before_the_third_hijacked_buyer():
    buys = [("A", OPEN + 20_000), ("A", OPEN + 21_000), ("B", OPEN + 30_000),
            ("C", OPEN + 40_000), ("D", OPEN + 50_000)]
    at_third = _tickers(buys, Halt(T, OPEN + 40_000))["targeted"][T]
    assert at_third["halted_before_third_account_buy"] is True
    assert at_third["seconds_first_fraud_buy_to_halt"] == 20.0
    assert at_third["fraud_buys_to_halt"] == 3 and at_third["hijacked_buyers"] == 4
    late = _tickers(buys, Halt(T, OPEN + 40_001))
    assert late["targeted"][T]["halted_before_third_account_buy"] is False
    assert late["targeted_halted_before_third_account_buy"] == 0


def test_a_standing_halt_from_before_the_attack_is_false_not_a_catch():
    buys = [("A", OPEN + 20_000)]
    t = _tickers(buys, Halt(T, OPEN + 1_000), Halt(T, OPEN + 15_000))
    assert t["targeted"][T]["halt_ts"] == OPEN + 15_000  # the one issued after the start
    assert t["targeted"][T]["seconds_first_fraud_buy_to_halt"] == -5.0
    assert [h["ts"] for h in t["false_halts"]] == [OPEN + 1_000]


def test_false_account_actions_per_thousand_active_accounts():
    from tradeguard.scorecard.outcome import AccountAction

    truth = _truth([("A", OPEN + 20_000)])
    orders = [{"order_id": f"o{i}", "account_id": f"L{i % 500}", "ticker": "7203",
               "side": "buy", "ts": OPEN + i} for i in range(1_000)]
    outcome = Outcome("x", account_actions=[AccountAction("L1", "step_up", OPEN)])
    accounts = score(orders, truth, outcome)["accounts"]
    assert (accounts["active_accounts"], accounts["false_account_actions_per_1k_active"]) == (
        500, 2.0)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from("ABCDEF"), st.integers(0, 100), max_size=6),
       st.one_of(st.none(), st.integers(0, 100)))
def test_before_third_buyer_agrees_with_its_definition(first_buys, halt):
    """Naive twin: walk the buyers in time order; the halt must not come after the 3rd's buy."""
    ordered = sorted(first_buys.values())
    if not ordered:
        expected = True
    else:
        deadline = ordered[2] if len(ordered) >= 3 else ordered[-1]
        expected = halt is not None and not halt > deadline
    assert _before_third_buyer(halt, first_buys) is expected


def test_verdicts_against_a_baseline():
    def orders(fraud, legit, attempted=1e8, legit_orders=10_000):
        stopped_legit = round(legit * legit_orders / 10_000)
        return {"fraud_yen_stopped_share": fraud, "legit_stopped_per_10k": legit,
                "fraud_yen_attempted": attempted if fraud is not None else 0.0,
                "fraud_yen_stopped": attempted * (fraud or 0.0) if fraud is not None else 0.0,
                "legit_held": stopped_legit, "legit_blocked": 0}
    assert _verdict(orders(0.99, 3.0), orders(0.5, 3.0)) == "ahead"
    assert _verdict(orders(0.5, 3.0), orders(0.99, 1.0)) == "behind"
    # a trade-off is weighed: 49M yen more stopped for 2 more holds (100,000 yen) wins...
    assert _verdict(orders(0.99, 3.0), orders(0.5, 1.0)) == "ahead"
    # ...and 1,000 yen more stopped for 2 more holds loses
    assert _verdict(orders(0.50001, 3.0), orders(0.5, 1.0, attempted=1e8)) == "behind"
    assert _verdict(orders(0.5, 1.0), orders(0.5, 1.0)) == "even"
    assert _verdict(orders(None, 0.0), orders(None, 2.0)) == "ahead"
    assert _verdict(orders(None, 2.0), orders(None, 2.0)) == "even"


def test_a_released_step_up_no_longer_stops_the_account_and_warm_up_actions_count_apart():
    from tradeguard.scorecard.outcome import AccountAction
    from tradeguard.simulator.truth import TakenOverAccount

    truth = dataclasses.replace(_truth([("V", OPEN + 20_000)]), accounts=[TakenOverAccount(
        "V", "c", "phishing", 0, True, OPEN + 10_000, OPEN + 10_000, OPEN + 15_000,
        OPEN + 20_000, 0, False, "1.2.3.4", "dev-x", 4134, "CN")])
    orders = [{"order_id": "b0", "account_id": "V", "ticker": T, "side": "buy",
               "ts": OPEN + 20_000}]
    passed = [AccountAction("V", "step_up", OPEN - 100_000),  # a step-up the owner passed
              AccountAction("V", "release", OPEN - 90_000),
              AccountAction("L", "step_up", OPEN - 50_000)]   # an honest customer, warm-up
    a = score(orders, truth, Outcome("x", account_actions=passed))["accounts"]
    assert a["stopped_before_first_fraud_buy"] == 0
    assert (a["false_account_actions"], a["false_account_actions_in_warmup"]) == (0, 1)
    again = passed + [AccountAction("V", "step_up", OPEN + 20_000)]  # at the buy: held
    a = score(orders, truth, Outcome("x", account_actions=again))["accounts"]
    assert a["stopped_before_first_fraud_buy"] == 1
