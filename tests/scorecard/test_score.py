"""The pure scorecard on hand-built sessions whose answers are known."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeguard.scorecard import AccountAction, Halt, Outcome, engine_outcome, latency_ms, score
from tradeguard.scorecard.score import threshold_curve, wilson
from tradeguard.simulator.truth import (Accomplice, FraudOrder, GroundTruth, HardNegative,
                                        TakenOverAccount, TargetedTicker)

pytestmark = pytest.mark.quick  # pure and fast: `python -m pytest -m quick`

OPEN = 1_000_000
PUMPED, NEWS, CALM = "9999", "8888", "7203"


def _order(order_id, account, ticker, side, ts):
    return {"order_id": order_id, "account_id": account, "ticker": ticker, "side": side, "ts": ts}


def _taken_over(account, first_fraud_ts, first_buy_ts):
    return TakenOverAccount(account, "pump", "phishing", 0, first_buy_ts is not None, OPEN,
                            first_fraud_ts, first_fraud_ts, first_buy_ts, 0, False, "1.2.3.4",
                            "dev-x", 4134, "CN")


@pytest.fixture
def tiny():
    """Campaign from OPEN+10 s on PUMPED by accounts V1 (sell then 2 buys) and V2 (1 buy).

    Legitimate: L1..L4 (L2 and L3 in the "news" rush into NEWS); accomplice X.
    """
    fraud = [
        FraudOrder("v1-sell", "V1", "pump", "liquidation", "6501", "sell", 100, 4e6, OPEN + 11_000),
        FraudOrder("v1-buy1", "V1", "pump", "pump", PUMPED, "buy", 100, 1e6, OPEN + 12_000),
        FraudOrder("v2-buy1", "V2", "pump", "pump", PUMPED, "buy", 100, 2e6, OPEN + 15_000),
        FraudOrder("v1-buy2", "V1", "pump", "pump", PUMPED, "buy", 100, 3e6, OPEN + 20_000),
    ]
    truth = GroundTruth(
        "tiny", 1, 0, OPEN, OPEN + 60_000, fraud_orders=fraud,
        accounts=[_taken_over("V1", OPEN + 11_000, OPEN + 12_000),
                  _taken_over("V2", OPEN + 15_000, OPEN + 15_000),
                  _taken_over("V3", None, None)],
        tickers=[TargetedTicker(PUMPED, "pump", "penny", "JP", OPEN + 10_000, OPEN + 5_000,
                                OPEN + 12_000, OPEN + 40_000, 3, 6e6)],
        accomplices=[Accomplice("X", "pump", True, ["x-buy"])],
        negatives=[HardNegative("news", "news_rush", OPEN + 20_000, OPEN + 30_000, ["L2", "L3"],
                                [NEWS], ["l2", "l3"])])
    orders = [_order(o.order_id, o.account_id, o.ticker, o.side, o.ts) for o in fraud] + [
        _order("l1", "L1", CALM, "buy", OPEN + 1_000),
        _order("l2", "L2", NEWS, "buy", OPEN + 21_000),
        _order("l3", "L3", NEWS, "buy", OPEN + 22_000),
        _order("l4", "L4", CALM, "sell", OPEN + 23_000),
        _order("x-buy", "X", PUMPED, "buy", OPEN + 6_000),
    ]
    return orders, truth


def _outcome(actions=None, halts=(), accounts=()):
    return Outcome("test", actions or {}, {}, list(halts), list(accounts))


def test_fraud_orders_stopped_count_share_and_yen(tiny):
    orders, truth = tiny
    out = score(orders, truth, _outcome(
        {"v1-sell": "allow", "v1-buy1": "hold", "v2-buy1": "block", "l1": "allow"}))["orders"]
    assert (out["fraudulent"], out["legitimate"], out["accomplice"]) == (4, 4, 1)
    assert (out["fraud_stopped"], out["fraud_held"], out["fraud_blocked"]) == (2, 1, 1)
    assert out["fraud_stopped_share"] == pytest.approx(2 / 4)
    assert out["fraud_yen_attempted"] == 10e6 and out["fraud_yen_stopped"] == 3e6
    assert out["fraud_yen_stopped_share"] == pytest.approx(0.3)
    assert out["fraud_by_phase"]["liquidation"] == {"count": 1, "stopped": 0, "yen": 4e6,
                                                    "yen_stopped": 0}
    assert out["fraud_by_phase"]["pump"]["stopped"] == 2
    assert out["undecided"] == 5  # v1-buy2, l2, l3, l4, x-buy: counted as allowed
    assert out["legit_stopped_per_10k"] == 0.0


def test_three_fraud_orders_two_stopped_is_two_thirds(tiny):
    orders, truth = tiny
    pump_only = [o for o in orders if o["order_id"] != "v1-sell"]
    out = score(pump_only, truth, _outcome({"v1-buy1": "hold", "v2-buy1": "hold"}))["orders"]
    assert out["fraudulent"] == 3
    assert out["fraud_stopped_share"] == pytest.approx(2 / 3)


def test_legitimate_holds_and_blocks_per_10k_named_by_scenario(tiny):
    orders, truth = tiny
    out = score(orders, truth, _outcome(
        {"l1": "allow", "l2": "hold", "l3": "block", "l4": "hold", "x-buy": "block"}))["orders"]
    assert out["legit_held"] == 2 and out["legit_blocked"] == 1
    assert out["legit_held_per_10k"] == 5_000.0 and out["legit_blocked_per_10k"] == 2_500.0
    assert out["legit_stopped_by_negative"] == {"news": 2, "routine": 1}
    assert out["accomplice_stopped"] == 1  # counted apart, never as a false alarm


def test_halt_timing_in_seconds_and_fraud_buys(tiny):
    orders, truth = tiny
    halted = score(orders, truth, _outcome(halts=[Halt(PUMPED, OPEN + 16_000)]))["tickers"]
    t = halted["targeted"][PUMPED]
    assert t["seconds_to_halt"] == 6.0
    assert t["fraud_buys_to_halt"] == 2  # the buys at +12 s and +15 s, not the one at +20 s
    assert t["fraud_buys_total"] == 3
    assert (halted["targeted_halted"], halted["median_seconds_to_halt"]) == (1, 6.0)


def test_first_halt_counts_and_a_buy_at_the_halt_instant_is_after_it(tiny):
    orders, truth = tiny
    halts = [Halt(PUMPED, OPEN + 30_000), Halt(PUMPED, OPEN + 15_000)]
    t = score(orders, truth, _outcome(halts=halts))["tickers"]["targeted"][PUMPED]
    assert (t["seconds_to_halt"], t["fraud_buys_to_halt"]) == (5.0, 1)


def test_never_halted_is_null(tiny):
    orders, truth = tiny
    t = score(orders, truth, _outcome())["tickers"]
    assert t["targeted"][PUMPED]["seconds_to_halt"] is None
    assert t["targeted"][PUMPED]["fraud_buys_to_halt"] is None
    assert t["targeted_halted"] == 0 and t["median_seconds_to_halt"] is None


def test_a_halt_issued_before_the_attack_is_false_even_if_still_in_force(tiny):
    """Only a halt issued at or after the campaign start is a catch (issue 10, item 6)."""
    orders, truth = tiny
    lapsed = Halt(PUMPED, OPEN + 1_000, until=OPEN + 4_000)  # pre-positioning starts at +5 s
    t = score(orders, truth, _outcome(halts=[lapsed]))["tickers"]
    assert t["targeted"][PUMPED]["seconds_to_halt"] is None
    assert [(h["ticker"], h["until"]) for h in t["false_halts"]] == [(PUMPED, OPEN + 4_000)]
    standing = Halt(PUMPED, OPEN + 1_000, until=OPEN + 11_000)  # still in force at the start
    t = score(orders, truth, _outcome(halts=[lapsed, standing]))["tickers"]
    x = t["targeted"][PUMPED]
    assert (x["seconds_to_halt"], x["fraud_buys_to_halt"], x["before_attack"]) == (None, None, True)
    assert not x["halted_before_third_account_buy"]
    assert t["false_halt_count"] == 2
    during = Halt(PUMPED, OPEN + 7_000)  # in the pre-positioning: neither a catch nor false
    t = score(orders, truth, _outcome(halts=[during]))["tickers"]
    assert (t["targeted"][PUMPED]["preposition_halt_ts"], t["false_halt_count"]) == (
        OPEN + 7_000, 0)
    assert t["targeted"][PUMPED]["halt_ts"] is None


def test_false_halts_name_the_hard_negative(tiny):
    orders, truth = tiny
    t = score(orders, truth, _outcome(halts=[
        Halt(NEWS, OPEN + 25_000), Halt(CALM, OPEN + 26_000), Halt(PUMPED, OPEN + 27_000)]))
    t = t["tickers"]
    assert t["false_halt_count"] == 2
    assert [(h["ticker"], h["negative"]) for h in t["false_halts"]] == [(NEWS, "news"),
                                                                          (CALM, None)]
    assert t["false_halted_tickers"] == sorted([NEWS, CALM])


def test_accounts_stopped_before_first_fraudulent_buy(tiny):
    orders, truth = tiny
    actions = [
        AccountAction("V1", "step_up", OPEN + 12_000),  # at its first buy: that buy is held
        AccountAction("V2", "freeze", OPEN + 16_000),   # after its only buy
        AccountAction("V3", "step_up", OPEN + 5_000),   # logged into, never traded
        AccountAction("L2", "step_up", OPEN + 21_000),  # a customer in the news rush
        AccountAction("L2", "freeze", OPEN + 22_000),   # the same customer, counted once
        AccountAction("L4", "block_login", OPEN + 23_000),
        AccountAction("X", "step_up", OPEN + 6_000),    # an accomplice: not a false action
    ]
    a = score(orders, truth, _outcome(accounts=actions))["accounts"]
    assert (a["taken_over"], a["with_fraud_buys"]) == (3, 2)
    assert a["stopped_before_first_fraud_buy"] == 1
    assert a["stopped_before_first_fraud_buy_share"] == pytest.approx(0.5)
    assert a["stopped_before_first_fraud_order"] == 0  # V1 sold before the step-up
    assert a["taken_over_stopped_ever"] == 3
    assert a["accomplices_stopped"] == 1
    assert a["false_account_actions"] == 2
    assert a["false_account_actions_by_negative"] == {"news": 1, "routine": 1}
    assert a["false_account_actions_by_kind"] == {"step_up": 1, "block_login": 1}


def test_engine_controls_are_placed_in_event_time():
    """Controls carry event time (the core stamps them from the records behind them)."""
    decisions = [  # wall ts 100..900; event time in order_ts
        {"order_id": "a", "action": "allow", "score": 0.1, "order_ts": 1_000, "ts": 100},
        {"order_id": "b", "action": "hold", "score": 0.7, "order_ts": 3_000, "ts": 200},
        {"order_id": "c", "action": "allow", "score": 0.2, "order_ts": 2_500, "ts": 300},
        {"order_id": "d", "action": "block", "score": 0.9, "order_ts": 4_000, "ts": 400},
        {"order_id": "b", "action": "allow", "score": 0.1, "order_ts": 3_000, "ts": 900},
    ]
    halts = [{"ticker": "T", "action": "halt_buys", "source": "engine", "ts": 2_400,
              "expires_at": 60_000},
             {"ticker": "T", "action": "release", "source": "cli", "ts": 3_500},
             {"ticker": "U", "action": "halt_buys", "source": "engine", "ts": 5_000,
              "expires_at": 8_000},
             {"ticker": "U", "action": "release", "source": "engine", "ts": 8_000},
             {"ticker": "V", "action": "halt_buys", "source": "analyst", "ts": 6_000}]
    accounts = [
        {"account_id": "A", "action": "step_up", "source": "engine",
         "evidence": {"order_id": "d"}, "ts": 4_000},
        {"account_id": "B", "action": "freeze", "source": "feedback",
         "evidence": {"order_id": "a"}, "ts": 2_600},
        {"account_id": "B", "action": "release", "source": "cli", "evidence": None, "ts": 2_700},
    ]
    out = engine_outcome(decisions, halts, accounts)
    assert out.actions == {"a": "allow", "b": "hold", "c": "allow", "d": "block"}  # first wins
    # T released by hand before it expired; U lapsed at its expiry; V never ends.
    assert out.halts == [Halt("T", 2_400, until=3_500), Halt("U", 5_000, until=8_000),
                         Halt("V", 6_000, source="analyst")]
    # A's step-up holds the very order that raised it; B's freeze (a label) at its own ts,
    # ended by its release.
    assert out.account_actions == [AccountAction("A", "step_up", 4_000),
                                   AccountAction("B", "freeze", 2_600),
                                   AccountAction("B", "release", 2_700)]


def test_latency_is_decision_ts_minus_produce_time():
    decisions = [{"order_id": str(i), "ts": 1_000 + i} for i in range(100)]
    lat = latency_ms({str(i): 1_000.0 for i in range(100)}, decisions)
    assert lat["orders"] == 100 and lat["p50"] == pytest.approx(49.5) and lat["max"] == 99.0
    assert latency_ms({}, decisions)["p99"] is None


def test_threshold_curve_recall_falls_as_the_threshold_rises(tiny):
    orders, truth = tiny
    scores = {"v1-sell": 0.9, "v1-buy1": 0.7, "v2-buy1": 0.5, "v1-buy2": 0.3,
              "l1": 0.1, "l2": 0.6, "l3": 0.2, "l4": 0.0, "x-buy": 1.0}
    curve = threshold_curve(scores, orders, truth, thresholds=10)
    recalls = [p["recall"] for p in curve]
    assert recalls == sorted(recalls, reverse=True) and recalls[0] == 1.0
    at = {p["threshold"]: p for p in curve}
    assert at[0.5]["recall"] == 0.75 and at[0.5]["precision"] == 0.75  # l2 is the false one
    assert at[0.0]["precision"] == 0.5  # the accomplice's order is left out


def test_the_owners_orders_on_a_hijacked_account_are_counted_apart_from_clean_accounts():
    from tradeguard.simulator.truth import TakenOverAccount
    victim = TakenOverAccount("V", "c", "aitm", 0, True, 0, 0, 5, 5, 0, False, "ip", "d", 1, "VN")
    truth = GroundTruth("t", 0, 0, 0, 60_000, accounts=[victim], fraud_orders=[
        FraudOrder("f", "V", "c", "liquidation", "7203", "sell", 100, 1e6, 5)])
    orders = [{"order_id": i, "account_id": a, "ticker": "7203", "side": "sell", "ts": 10}
              for i, a in (("f", "V"), ("own", "V"), ("ok", "C"), ("ok2", "C"))]
    s = score(orders, truth, Outcome("x", {"f": "block", "own": "block", "ok": "hold",
                                           "ok2": "allow"}))["orders"]
    assert (s["legitimate"], s["legit_on_hijacked_accounts"]) == (3, 1)
    assert s["legit_stopped_on_hijacked_accounts"] == 1
    assert s["legit_stopped_per_10k"] == pytest.approx(10_000 * 2 / 3, abs=0.01)
    assert s["legit_stopped_per_10k_clean_accounts"] == 5_000
    # the counts behind the clean rate travel with it, and its 95% Wilson interval
    assert (s["legit_stopped_clean_accounts"], s["legit_clean_accounts"]) == (1, 2)
    assert s["legit_stopped_per_10k_clean_accounts_ci95"] == [945.31, 9054.69]


@settings(max_examples=300, deadline=None, database=None)
@given(st.integers(0, 10**6), st.integers(1, 10**6))
def test_wilson_interval_holds_the_rate_within_0_and_1(k, n):
    k = min(k, n)
    low, high = wilson(k, n)
    assert 0.0 <= low <= k / n <= high <= 1.0
    assert high > low  # never a point, not even at 0 or n stops


def test_wilson_matches_the_textbook_values_and_refuses_bad_counts():
    # Wilson (1927): 0 of 10 -> [0, 0.2775]; 5 of 10 -> [0.2366, 0.7634]
    assert [round(x, 4) for x in wilson(0, 10)] == [0.0, 0.2775]
    assert [round(x, 4) for x in wilson(5, 10)] == [0.2366, 0.7634]
    assert wilson(0, 0) is None
    with pytest.raises(ValueError, match="k=3, n=2"):
        wilson(3, 2)


def test_the_table_gives_each_rate_with_its_counts_and_interval():
    from tradeguard.scorecard.inprocess import scorecard_table
    orders = {"fraud_yen_stopped_share": 0.999, "legit_held_per_10k": 1.0,
              "legit_blocked_per_10k": 0.0, "legit_stopped_per_10k_clean_accounts": 1.0,
              "legit_stopped_clean_accounts": 10, "legit_clean_accounts": 100_000,
              "legit_stopped_per_10k_clean_accounts_ci95": [0.54, 1.84]}
    accounts = {"stopped_before_first_fraud_order_share": 0.95,
                "stopped_before_first_fraud_buy_share": 1.0,
                "false_account_actions_per_1k_active": 0.5, "false_account_actions": 3,
                "active_accounts": 6000}
    tickers = {"false_halt_count": 0, "targeted_halted_before_third_account_buy": 2,
               "targeted_count": 2}
    row = {"name": "big", "seed": 1, "verdicts": {"river_anomaly": "ahead"},
           "engine": {"orders": orders, "tickers": tickers, "accounts": accounts}}
    line = scorecard_table([row]).splitlines()[2]
    assert line == ("| big | 1 | 99.9% | 1 / 0 | 1 (10 / 100,000; 0.54-1.84) | 0 | 2/2 | "
                    "95.0% / 100.0% | 0.5 (3 / 6,000) | yes |")
