"""Acting on compromise at login: a stranger's login is stepped up before any order, with the
login as evidence, in event time and whatever the batching; a traveller on their own phone is
not; the login's own factor is not an answer to the engine's challenge."""

from __future__ import annotations

import random

import pytest

from tradeguard.core import InProcessEngine

T0 = 1_760_000_000_000
MIN = 60_000
HOME = {"ip": "203.0.113.5", "device_id": "dev-home", "user_agent": "KabuApp/30.1 (iPhone)",
        "country": "JP", "asn": 2516}
# A rented server abroad (AS16509 is in the default policy's hosting list), a new device.
STRANGER = {"ip": "198.51.100.66", "device_id": "dev-evil", "user_agent": "Mozilla/5.0 (evil)",
            "country": "SG", "asn": 16509}
# The customer's own phone on a VPN exit abroad (AS9009, hosting as well).
TRAVELLER = {**HOME, "ip": "192.0.2.44", "country": "TH", "asn": 9009}


def auth(event, ts, where, session="s-1"):
    return ("auth.events", {"account_id": "acct-1", "event": event, "session_id": session,
                            **where, "ts": ts})


def order(oid, ts, where, session):
    return ("orders", {"order_id": oid, "account_id": "acct-1", "ticker": "7203", "side": "sell",
                       "qty": 100, "price": 250.0, "margin": False, "session_id": session,
                       "ip": where["ip"], "device_id": where["device_id"],
                       "user_agent": where["user_agent"], "holdings_value": 2_500_000.0,
                       "ts": ts})


def story(where, *after):
    """Known at home for a day (an order there); then a login from ``where`` and a small sell
    on its session; an order on the home session lands between the failures and the login."""
    return sorted([auth("login_success", T0 - 24 * 60 * MIN, HOME, session="s-0"),
                   order("home-old", T0 - 24 * 60 * MIN + 1000, HOME, "s-0"),
                   *(auth("login_failure", T0 - 30_000 + k, where, session=None) for k in range(2)),
                   order("home-before", T0 - 1000, HOME, "s-0"),
                   auth("login_success", T0, where),
                   order("first", T0 + MIN, where, "s-1"),
                   *after], key=lambda r: r[1]["ts"])


def run(records, batch_size=2048):
    engine = InProcessEngine()
    decisions, controls = {}, []
    for out in engine.run(records, batch_size=batch_size):
        decisions.update({d["order_id"]: d for d in out.decisions.rows()})
        controls += out.account_controls
    return decisions, controls


def test_a_strangers_login_is_stepped_up_at_the_login_before_any_order():
    decisions, controls = run(story(STRANGER))
    step_up = controls[0]
    assert (step_up["action"], step_up["ts"]) == ("step_up", T0)
    evidence = step_up["evidence"]
    assert evidence["order_id"] is None and evidence["login"]["session_id"] == "s-1"
    assert {"new_device", "hosting_network"} <= {r["code"] for r in evidence["reasons"]}
    assert evidence["answer_by"] == T0 + 600_000
    assert decisions["first"]["action"] in ("hold", "block")
    # the order before the login, on the customer's own session, is decided without it
    assert decisions["home-before"]["action"] == "allow"


def test_a_traveller_on_their_own_phone_behind_a_vpn_is_not_stepped_up():
    decisions, controls = run(story(TRAVELLER))
    assert controls == []
    assert decisions["first"]["action"] == "allow"


@pytest.mark.parametrize("answer, session, expected", [
    # the login's own factor, in its session: a relayed code passes it; not an answer
    ("mfa_challenge_passed", "s-1", ["step_up", "freeze"]),
    # the login's own factor failed: the session never opened, the step-up is withdrawn
    ("mfa_challenge_failed", "s-1", ["step_up", "release"]),
    # the challenge answered out of band (a passkey prompt): released, or frozen
    ("mfa_challenge_passed", None, ["step_up", "release"]),
    ("mfa_challenge_failed", None, ["step_up", "freeze"]),
])
def test_what_answers_a_login_step_up(answer, session, expected):
    records = story(STRANGER, auth(answer, T0 + 20_000, STRANGER, session=session),
                    order("later", T0 + 30 * MIN, STRANGER, "s-1"))
    _, controls = run(records)
    assert [c["action"] for c in controls][:len(expected)] == expected
    if expected[-1] == "release" and session == "s-1":
        assert controls[1]["reason"] == "the login's own factor failed: its session never opened"


@pytest.mark.parametrize("where", [STRANGER, TRAVELLER])
def test_login_step_ups_do_not_depend_on_the_batching(where):
    records = story(where, auth("mfa_challenge_passed", T0 + 5 * MIN, where, session=None),
                    order("later", T0 + 30 * MIN, where, "s-1"))
    whole = run(records)
    rnd = random.Random(3)
    for _ in range(6):
        sizes = iter(lambda: rnd.randint(1, 3), None)
        assert run(records, batch_size=sizes) == whole
