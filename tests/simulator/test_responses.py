"""How the simulated world answers the engine: customers at step-ups, analysts on what it stopped.

The responders are pure given the session and their seed; these tests feed them
hand-made engine records on the shipped short scenario, where the ground truth
says who holds each session.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tradeguard.simulator.responses import AnalystDesk, CustomerResponses, Review
from tradeguard.simulator.scenario import ResponsesConfig, ScenarioError, parse_scenario

pytestmark = pytest.mark.quick  # pure and fast: `python -m pytest -m quick`

N = 400  # step-ups per statistical check


def _step_up(order: dict) -> dict:
    return {"account_id": order["account_id"], "action": "step_up", "source": "engine",
            "reason": "test", "evidence": {"order_id": order["order_id"]}, "ts": order["ts"]}


@pytest.fixture(scope="module")
def cast(short_session):
    """The short session's legitimate orders and its attackers' orders, by technique."""
    truth = short_session.truth
    technique = {a.account_id: a.technique for a in truth.accounts}
    fraud = truth.fraud_order_ids
    taken = set(technique)
    orders = list(short_session.of("orders"))
    legit = [o for o in orders if o["account_id"] not in taken
             and o["order_id"] not in {i for a in truth.accomplices for i in a.order_ids}]
    attackers = {t: [o for o in orders if o["order_id"] in fraud
                     and technique[o["account_id"]] == t] for t in set(technique.values())}
    assert legit and all(attackers[t] for t in ("phishing", "aitm", "infostealer")), attackers
    return legit, attackers


def _answers(session, cfg, orders, seed_part="test"):
    from tradeguard.simulator.responses import responses_rng

    customers = CustomerResponses(session, cfg, responses_rng(7, seed_part))
    controls = [_step_up(orders[k % len(orders)]) for k in range(N)]
    return controls, customers.answer(controls), customers


def test_legitimate_customers_pass_from_their_own_session_and_device(short_session, cast):
    legit, _ = cast
    cfg = dataclasses.replace(ResponsesConfig(), legit_pass_rate=1.0)
    controls, answers, _ = _answers(short_session, cfg, legit)
    assert len(answers) == N
    by_id = {o["order_id"]: o for o in legit}
    for control, (topic, auth) in zip(controls, answers):
        order = by_id[control["evidence"]["order_id"]]
        assert topic == "auth.events" and auth["event"] == "mfa_challenge_passed"
        assert {k: auth[k] for k in ("account_id", "session_id", "ip", "device_id",
                                     "user_agent")} == {
            k: order[k] for k in ("account_id", "session_id", "ip", "device_id", "user_agent")}
        assert auth["country"] is not None and auth["asn"] is not None  # from the login
        assert order["ts"] + 10_000 <= auth["ts"] <= order["ts"] + 120_000


def test_some_legitimate_customers_never_answer(short_session, cast):
    """legit_pass_rate 0.98: the rest time out (no record); binomial bounds, fixed seed."""
    legit, _ = cast
    _, answers, customers = _answers(short_session, ResponsesConfig(), legit)
    assert {r["event"] for _, r in answers} == {"mfa_challenge_passed"}
    assert customers.silent == N - len(answers)
    assert 0.95 * N <= len(answers) <= N - 1  # mean 392, sd 2.8


@pytest.mark.parametrize("technique", ["phishing", "aitm", "infostealer"])
def test_attackers_never_pass_a_passkey(short_session, cast, technique):
    _, attackers = cast
    cfg = dataclasses.replace(ResponsesConfig(), factor="passkey", attacker_try_rate=0.5)
    _, answers, customers = _answers(short_session, cfg, attackers[technique])
    assert {r["event"] for _, r in answers} == {"mfa_challenge_failed"}
    assert 0.4 * N <= len(answers) <= 0.6 * N  # tried and failed; the rest gave up
    assert customers.silent == N - len(answers)


@pytest.mark.parametrize("technique", ["phishing", "aitm"])
def test_relayed_one_time_codes_pass(short_session, cast, technique):
    _, attackers = cast
    cfg = dataclasses.replace(ResponsesConfig(), factor="otp", relay_pass_rate=0.8)
    _, answers, _ = _answers(short_session, cfg, attackers[technique])
    passed = sum(r["event"] == "mfa_challenge_passed" for _, r in answers)
    assert passed == len(answers)  # a relay that fails just goes quiet
    assert 0.72 * N <= passed <= 0.88 * N  # mean 320, sd 8
    taken = {a.account_id: a for a in short_session.truth.accounts}
    for _, r in answers:  # from the attacker's machine, not the victim's
        a = taken[r["account_id"]]
        assert (r["ip"], r["device_id"], r["country"]) == (a.attacker_ip, a.attacker_device_id,
                                                           a.attacker_country)


def test_an_infostealer_cannot_answer_a_one_time_code_either(short_session, cast):
    _, attackers = cast
    cfg = dataclasses.replace(ResponsesConfig(), factor="otp", relay_pass_rate=1.0)
    _, answers, _ = _answers(short_session, cfg, attackers["infostealer"])
    assert answers and {r["event"] for _, r in answers} == {"mfa_challenge_failed"}


def test_only_engine_step_ups_are_answered_and_unknown_orders_are_named(short_session, cast):
    legit, _ = cast
    customers = CustomerResponses(short_session, ResponsesConfig())
    freeze = {**_step_up(legit[0]), "action": "freeze"}
    by_hand = {**_step_up(legit[0]), "source": "cli"}
    assert customers.answer([freeze, by_hand]) == []
    with pytest.raises(ValueError, match="evidence.order_id 'nope'"):
        customers.answer([{**_step_up(legit[0]), "evidence": {"order_id": "nope"}}])


def test_analyst_labels_match_the_truth_but_for_the_error_rate(short_session, cast):
    legit, attackers = cast
    fraud = [o for orders in attackers.values() for o in orders]
    cfg = dataclasses.replace(ResponsesConfig(), analyst_error_rate=0.1, reviews_per_hour=1e6)
    desk = AnalystDesk(short_session, cfg, np.random.default_rng(11))
    wrong, n, start = 0, 2_000, short_session.close_ms
    for k in range(n):
        o = (fraud + legit)[k % (len(fraud) + len(legit))]
        now = start + 1_000 * k  # the desk is never busy at 1e6 reviews an hour
        _, label = desk.review(Review(o["account_id"], o["order_id"], o["ts"], now), now)
        truth = "fraud" if o["order_id"] in short_session.truth.fraud_order_ids else "legit"
        wrong += label["label"] != truth
        assert label["source"].startswith("analyst-") and label["ts"] == now
    assert wrong == desk.mislabelled
    assert 0.08 * n <= wrong <= 0.12 * n  # mean 200, sd 13


def test_account_reviews_label_a_takeover_only_once_it_happened(short_session):
    desk = AnalystDesk(short_session, ResponsesConfig())
    victim = short_session.truth.accounts[0]
    before = Review(victim.account_id, None, victim.access_ts - 5_000, victim.access_ts - 1)
    assert desk.label(before, victim.access_ts - 1) == "legit"
    assert desk.label(before, victim.access_ts) == "fraud"
    mule = short_session.truth.accomplices[0].account_id
    assert desk.label(Review(mule, None, 0, 0), 0) == "fraud"


def test_each_order_and_account_is_queued_once_after_the_review_delay(short_session, cast):
    legit, _ = cast
    o = legit[0]
    desk = AnalystDesk(short_session, ResponsesConfig(review_delay_s=1200, review_jitter=0.5))
    held = {"order_id": o["order_id"], "account_id": o["account_id"], "action": "hold",
            "order_ts": o["ts"]}
    allowed = {**held, "order_id": "other", "action": "allow"}
    first = desk.queue([held, allowed], [_step_up(o)])
    assert [(r.order_id, r.account_id) for r in first] == [(o["order_id"], o["account_id"]),
                                                           (None, o["account_id"])]
    assert all(o["ts"] + 600_000 <= r.due_ts <= o["ts"] + 1_800_000 for r in first)
    assert desk.queue([held], [_step_up(o)]) == []


def test_analysts_work_at_their_capacity(short_session, cast):
    legit, _ = cast
    desk = AnalystDesk(short_session, ResponsesConfig(reviews_per_hour=60))
    a, b = (Review(o["account_id"], o["order_id"], o["ts"], 1_000_000) for o in legit[:2])
    assert desk.review(a, 1_000_000)[0] == "feedback"
    assert desk.review(b, 1_000_000) == 1_060_000  # one a minute: wait for the next analyst
    assert desk.review(b, 1_060_000)[1]["source"] == "analyst-1"


def test_the_responses_section_is_checked_key_by_key():
    assert parse_scenario({"responses": {"factor": "otp"}}).responses.factor == "otp"
    with pytest.raises(ScenarioError, match=r"responses.factor: must be one of"):
        parse_scenario({"responses": {"factor": "sms"}})
    with pytest.raises(ScenarioError, match="responses.answer_max_s: must be >= answer_min_s"):
        parse_scenario({"responses": {"answer_min_s": 60, "answer_max_s": 30}})
    with pytest.raises(ScenarioError, match="responses.legit_pass_rate: must be <= 1"):
        parse_scenario({"responses": {"legit_pass_rate": 1.5}})


def test_a_login_step_up_is_answered_out_of_band_by_whoever_made_the_login(short_session):
    """Raised on a login (evidence.login, no order): the customer answers from the login's
    device with no session (a passkey prompt); an attacker's login fails or goes quiet; a
    login whose own factor failed (the broker's MFA stopped a right password) is not answered."""
    truth = short_session.truth
    phished = next(a for a in truth.accounts if a.technique == "phishing")
    logins = [r for r in short_session.of("auth.events") if r["event"] == "login_success"]
    own = next(r for r in logins if r["account_id"] not in {a.account_id for a in truth.accounts})
    attacker = next(r for r in logins if r["account_id"] == phished.account_id
                    and r["device_id"] == phished.attacker_device_id)

    def step_up(login):
        return {"account_id": login["account_id"], "action": "step_up", "source": "engine",
                "evidence": {"order_id": None, "login": {k: login[k] for k in (
                    "session_id", "ip", "device_id", "user_agent")}}, "ts": login["ts"]}

    cfg = dataclasses.replace(ResponsesConfig(), legit_pass_rate=1.0, attacker_try_rate=1.0)
    customers = CustomerResponses(short_session, cfg)
    (_, answer), (_, attack) = customers.answer([step_up(own), step_up(attacker)])
    assert answer["event"] == "mfa_challenge_passed" and answer["session_id"] is None
    assert answer["device_id"] == own["device_id"] and answer["ts"] >= own["ts"] + 10_000
    assert attack["event"] == "mfa_challenge_failed"
    customers.truth.mfa_failed_sessions.add(own["session_id"])
    assert customers.answer([step_up(own)]) == []
