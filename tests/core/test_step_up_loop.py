"""Step-up is a loop, not a trap: a passed challenge releases the account, a failed or
unanswered one freezes it, all in event time and whatever the batching."""

from __future__ import annotations

import random

import pytest

from tradeguard.core import InProcessEngine

T0 = 1_760_000_000_000
MIN = 60_000
HOME = {"ip": "203.0.113.5", "device_id": "dev-home", "user_agent": "Mozilla/5.0 (home)",
        "country": "JP", "asn": 2516}
STRANGER = {"ip": "198.51.100.66", "device_id": "dev-evil", "user_agent": "Mozilla/5.0 (evil)",
            "country": "VN", "asn": 64500}


def auth(event: str, ts: int, where: dict, session: str = "s-1") -> tuple[str, dict]:
    return ("auth.events", {"account_id": "acct-1", "event": event, "session_id": session,
                            **where, "ts": ts})


def order(oid: str, ts: int, side: str = "sell", qty: int = 1000, holdings: float = 250_000.0,
          session: str = "s-1") -> tuple[str, dict]:
    return ("orders", {"order_id": oid, "account_id": "acct-1", "ticker": "7203", "side": side,
                       "qty": qty, "price": 250.0, "margin": False, "session_id": session,
                       "ip": STRANGER["ip"], "device_id": STRANGER["device_id"],
                       "user_agent": STRANGER["user_agent"], "holdings_value": holdings,
                       "ts": ts})


def story(answer: str | None) -> list[tuple[str, dict]]:
    """A customer known at home; a stranger logs in and sells everything (held, stepped up),
    the challenge is answered (or not), then the same session sells again 20 minutes on."""
    records = [auth("login_success", T0 - 24 * 60 * MIN, HOME, session="s-0"),
               auth("login_success", T0, STRANGER),
               order("sell-all", T0 + MIN)]
    if answer is not None:
        records.append(auth(answer, T0 + 2 * MIN, STRANGER))
    records.append(order("sell-again", T0 + 20 * MIN, qty=200, holdings=50_000.0))
    return records


def run(records, batch_size=2048):
    engine = InProcessEngine()
    decisions, controls = {}, []
    for out in engine.run(records, batch_size=batch_size):
        decisions.update({d["order_id"]: d for d in out.decisions.rows()})
        controls += out.account_controls
    return decisions, controls


def test_the_takeover_sell_is_held_and_the_account_stepped_up_with_a_deadline():
    decisions, controls = run(story(None)[:3])
    assert decisions["sell-all"]["action"] in ("hold", "block")
    assert [c["action"] for c in controls] == ["step_up"]
    assert controls[0]["evidence"]["answer_by"] == T0 + MIN + 600_000


def test_a_passed_challenge_releases_and_trusts_the_session():
    decisions, controls = run(story("mfa_challenge_passed"))
    assert [(c["action"], c["ts"]) for c in controls] == [("step_up", T0 + MIN),
                                                          ("release", T0 + 2 * MIN)]
    again = decisions["sell-again"]
    assert again["action"] == "allow", again
    assert not {r["code"] for r in again["reasons"]} & {"new_device", "account_step_up"}


def test_a_failed_challenge_freezes():
    decisions, controls = run(story("mfa_challenge_failed"))
    assert [c["action"] for c in controls] == ["step_up", "freeze"]
    assert decisions["sell-again"]["action"] == "block"
    assert decisions["sell-again"]["reasons"][0]["code"] == "account_frozen"


def test_an_unanswered_challenge_freezes_at_its_deadline():
    decisions, controls = run(story(None))
    assert [(c["action"], c["ts"]) for c in controls] == [("step_up", T0 + MIN),
                                                          ("freeze", T0 + 11 * MIN)]
    assert decisions["sell-again"]["action"] == "block"


def test_an_answer_after_the_deadline_does_not_release():
    records = story(None)
    records.insert(3, auth("mfa_challenge_passed", T0 + 12 * MIN, STRANGER))
    _, controls = run(records)
    assert [c["action"] for c in controls] == ["step_up", "freeze"]


@pytest.mark.parametrize("answer", ["mfa_challenge_passed", "mfa_challenge_failed", None])
def test_the_loop_does_not_depend_on_the_batching(answer):
    whole = run(story(answer))
    rnd = random.Random(7)
    for _ in range(5):
        sizes = iter(lambda: rnd.randint(1, 3), None)
        assert run(story(answer), batch_size=sizes) == whole
