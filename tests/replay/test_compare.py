"""Each cause the comparison names, on the evidence that names it, and only on that evidence."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradeguard.replay.compare import (LOGIN_RACE_MS, DecisionComparison, Decided, Evidence,
                                       compare_controls, diagnose)

pytestmark = pytest.mark.quick  # pure and fast: `python -m pytest -m quick`

T = 1_744_761_600_000


def decided(order_id="o1", action="allow", score=0.1, reasons=(), model="m1", policy="p1",
            ts=T, decided_ms=None, account="A", ticker="T", side="buy") -> Decided:
    body = orjson.dumps([{"code": c, "value": v} for c, v in reasons])
    return Decided(order_id, account, ticker, side, action, score, body, model, policy, ts,
                   decided_ms)


def cause(live, replay, ev=None, **kw):
    return diagnose(live if isinstance(live, list) else [live], replay, ev or Evidence(), **kw)


def test_another_policy():
    c, why = cause(decided(policy="p1"), decided(policy="p2", action="hold"))
    assert c == "policy" and "p1" in why and "p2" in why


def test_a_redelivered_order_that_was_decided_twice_differently():
    live = [decided(action="allow", decided_ms=1), decided(action="hold", decided_ms=2)]
    c, why = cause(live, decided(action="hold"))
    assert c == "redelivered" and "equals decision #2" in why


def test_a_buy_decided_before_its_halt_was_published():
    halt = {"ticker": "T", "action": "halt_buys", "ts": T - 5, "expires_at": T + 60_000,
            "published_ms": 10_050, "evidence": {"trigger_order_id": "o0"}}
    ev = Evidence(live_halts={"T": [halt]}, replay_halts={"T": [halt]})
    replay = decided(action="block", reasons=[("ticker_halted", 1.0)])
    c, why = cause(decided(decided_ms=10_000), replay, ev)
    assert c == "halt_propagation" and "published 50 ms after" in why and "o0" in why
    # Published before the decision: not a race, a halt the live engine failed to apply.
    c, _ = cause(decided(decided_ms=10_100), replay, ev)
    assert c == "halt_differs"
    # No live halt at all, or one that had expired by the order's time.
    assert cause(decided(decided_ms=1), replay, Evidence())[0] == "halt_differs"
    expired = {**halt, "expires_at": T}
    assert cause(decided(decided_ms=1), replay,
                 Evidence(live_halts={"T": [expired]}))[0] == "halt_differs"


def test_an_account_control_on_one_side():
    step_up = {"account_id": "A", "action": "step_up", "ts": T - 10, "source": "engine"}
    ev = Evidence(live_accounts={"A": [step_up]})
    c, why = cause(decided(action="hold", reasons=[("account_step_up", 1.0)]), decided(), ev)
    assert c == "account_control" and "live step_up since" in why and "replay no control" in why


def test_another_model_version():
    c, why = cause(decided(model="hst-v1/w3"), decided(model="hst-v1/w2"))
    assert c == "model_state" and "hst-v1/w3" in why


def test_a_login_written_just_before_the_live_decision():
    live = decided(score=0.0, decided_ms=5_000)
    replay = decided(score=0.3, reasons=[("new_device", 1.0), ("anomaly", 0.7)])
    ev = Evidence(logins={"A": [(T - 60_000, 5_000 - 4)]})
    c, why = cause(live, replay, ev)
    assert c == "login_timing" and "4 ms before" in why and "new_device live -, replay 1" in why
    # Written long enough before: the live worker had it; not this cause.
    ev = Evidence(logins={"A": [(T - 60_000, 5_000 - LOGIN_RACE_MS)]})
    assert cause(live, replay, ev)[0] == "feature_state"


def test_a_profile_published_after_the_live_decision():
    live = decided(score=0.01, reasons=[("thin_ticker_notional_x_adv", 0.001)], decided_ms=7_000)
    replay = decided(score=0.03, reasons=[("thin_ticker_notional_x_adv", 0.005)])
    ev = Evidence(live_profiles={"T": [(T - 180_000, 6_000), (T - 90_000, 7_040)]},
                  replay_profiles={"T": [T - 180_000, T - 90_000]})
    c, why = cause(live, replay, ev)
    assert c == "profile_timing" and "published it 40 ms after" in why
    assert "valued it with the one ending" in why
    # Published before the decision: the live worker had it; the difference is elsewhere.
    ev.live_profiles["T"][-1] = (T - 90_000, 6_990)
    c, why = cause(live, replay, ev)
    assert c == "feature_state" and "10 ms before deciding" in why


def test_what_an_earlier_difference_leaves_behind():
    live, replay = decided(score=0.2, reasons=[("anomaly", 0.6)]), \
        decided(score=0.3, reasons=[("anomaly", 0.8)])
    # The account's own earlier difference comes first ...
    c, why = cause(live, replay, earlier=("o0", "login_timing", T - 1))
    assert c == "account_history" and "o0" in why
    # ... then the partition's models, for a difference in the models' signals only ...
    c, why = cause(live, replay, partition_earlier=("o9", "profile_timing", T - 1))
    assert c == "model_state" and "whose features differed (profile_timing)" in why
    # ... and with neither, it is named for what it is.
    assert cause(live, replay)[0] == "feature_state"


def test_the_comparison_traces_a_range_difference_to_the_warm_up():
    live = {"w1": [decided("w1", ts=T - 10, decided_ms=1)],
            "r1": [decided("r1", ts=T + 10, decided_ms=2)],
            "r2": [decided("r2", ts=T + 20, decided_ms=3)]}
    cmp = DecisionComparison(live, range_start=T)
    cmp.add(decided("w1", ts=T - 10, score=0.5, reasons=[("new_device", 1.0)]))
    cmp.add(decided("r1", ts=T + 10, score=0.2, reasons=[("notional_x_usual", 3.0)]))
    cmp.add(decided("r2", ts=T + 20))
    cmp.add(decided("r3", ts=T + 30))  # no published decision
    out = cmp.finish(Evidence())
    assert out["warmup"] == {"compared": 1, "identical": 0, "causes": {"feature_state": 1},
                             "first_differences": out["warmup"]["first_differences"]}
    assert out["orders"]["compared"] == 2 and out["orders"]["identical"] == 1
    by_order = {d["order_id"]: d for d in out["differences"]}
    assert by_order["r1"]["cause"] == "account_history" and "w1" in by_order["r1"]["explanation"]
    assert by_order["r3"]["cause"] == "not_decided_live"


def test_a_candidate_policy_counts_the_same_decision_as_the_same():
    live = {"o1": [decided(policy="p1")]}
    strict = DecisionComparison(live)
    strict.add(decided(policy="p2"))
    candidate = DecisionComparison(live, candidate=True)
    candidate.add(decided(policy="p2"))
    assert strict.finish(Evidence())["orders"]["identical"] == 0
    assert candidate.finish(Evidence())["orders"]["identical"] == 1


def test_labels_count_stopped_fraud_and_legit_per_side():
    live = {"f": [decided("f", action="allow")], "g": [decided("g", action="hold")]}
    cmp = DecisionComparison(live, labels={"f": "fraud", "g": "legit"})
    cmp.add(decided("f", action="block"), notional=1_000.0)
    cmp.add(decided("g", action="allow"), notional=5.0)
    labels = cmp.finish(Evidence())["labels"]
    assert labels["live"]["fraud_yen_stopped"] == 0 and labels["replay"]["fraud_yen_stopped"] == 1_000
    assert labels["live"]["legit_stopped"] == 1 and labels["replay"]["legit_stopped_per_10k"] == 0


def test_an_order_decided_twice_by_the_replay_is_an_error():
    cmp = DecisionComparison({})
    cmp.add(decided())
    with pytest.raises(ValueError, match="decided twice"):
        cmp.add(decided())


control = st.fixed_dictionaries({"ticker": st.sampled_from("ABC"),
                                 "action": st.sampled_from(["halt_buys", "release"]),
                                 "ts": st.integers(0, 50)})


@given(st.lists(control, max_size=12), st.lists(control, max_size=12))
def test_paired_controls_account_for_every_record(live, replay):
    out = compare_controls(live, replay, "ticker")
    n = out["counts"]
    assert n["same"] + n["moved"] + n["removed"] == len(live)
    assert n["same"] + n["moved"] + n["added"] == len(replay)
    assert all(m["shift_ms"] != 0 for m in out["moved"])
    assert sum(r["count"] for r in out["by_reason"]) == n["added"] + n["removed"]

