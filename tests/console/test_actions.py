"""Operator actions over HTTP on the real broker: who may do what, and what lands on Kafka."""

from __future__ import annotations

import time

import pytest

from streams.signing import ControlKeys, check, sign
from tradeguard.broker.clients import GatewayProducer, TopicReader
from tests.console.client import Client
from tests.console.conftest import OPERATORS

pytestmark = pytest.mark.broker

TICKER, ACCOUNT, ORDER = "4592", "acct-7", "ord-1"


def _client(console, name: str | None = None) -> Client:
    c = Client(console.url)
    if name:
        assert c.login(name, OPERATORS[name][1]) == 303
    return c


def _engine_output(settings) -> dict:
    """What a worker would have published: a halt, an order and its hold decision."""
    now = int(time.time() * 1000)
    halt = {"ticker": TICKER, "action": "halt_buys", "reason": "2 risky accounts bought",
            "evidence": {"accounts": [ACCOUNT, "acct-8"], "risky_notional": 7.2e6,
                         "window_s": 600.0, "trigger_order_id": ORDER},
            "expires_at": now + 600_000, "source": "engine", "ts": now, "seq": 1}
    order = {"order_id": ORDER, "account_id": ACCOUNT, "ticker": TICKER, "side": "buy",
             "qty": 30_000, "price": 120.0, "margin": False, "session_id": "s1", "ts": now}
    decision = {"order_id": ORDER, "account_id": ACCOUNT, "ticker": TICKER, "side": "buy",
                "action": "hold", "score": 0.71,
                "reasons": [{"code": "new_device", "value": 1.0}], "model_version": "t",
                "order_ts": now, "ts": now}
    gateway = GatewayProducer(settings)
    gateway.send("controls.tickers", sign(halt, ControlKeys.development()))  # as the engine does
    gateway.send("orders", order)
    gateway.send("decisions", decision)
    gateway.flush()
    return halt


def _wait_for(predicate, timeout_s: float = 15.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_releases_need_a_supervisor_or_two_people_and_every_action_is_on_kafka(
        engine_settings, console):
    halt = _engine_output(engine_settings)
    _wait_for(lambda: console.console.view.order(ORDER)
              and console.console.view.halt_in_force(TICKER, int(time.time() * 1000)))
    vic, ana, abe, sue = (_client(console, n) for n in ("vic", "ana", "abe", "sue"))
    release = {"action": "release_halt", "target": TICKER, "next": f"/tickers/{TICKER}"}

    # A viewer can do nothing; an analyst cannot release at once, only propose.
    status, page = vic.act(**release, mode="propose", reason="I think it is fine")
    assert status == 403 and "viewers may only look" in page
    status, page = ana.act(**release, mode="now", reason="news")
    assert status == 403 and "releasing a halt needs a supervisor" in page
    assert ana.act(**release, mode="propose", reason="results day; genuine buyers")[0] == 303
    (proposal,) = console.console.view.proposals(int(time.time() * 1000), 3_600_000)
    settle = {**release, "proposal_id": proposal["proposal_id"]}
    status, page = ana.act(**settle, mode="approve", reason="me again")
    assert status == 403 and "someone other than its proposer" in page

    # An analyst extends the halt; the proposal was about the old halt, so approving it
    # now fails (the state changed) until it is proposed again.
    assert ana.act(action="extend_halt", target=TICKER, minutes="30", reason="more buyers "
                   "expected at the open", next="/")[0] == 303
    status, page = abe.act(**settle, mode="approve", reason="agree")
    assert status == 409 and "state changed since it was proposed" in page
    assert ana.act(**release, mode="propose", reason="results day, second try")[0] == 303
    (proposal,) = [p for p in console.console.view.proposals(int(time.time() * 1000), 3_600_000)
                   if not p["stale"]]
    assert abe.act(**release, proposal_id=proposal["proposal_id"], mode="approve",
                   reason="checked the filing")[0] == 303

    # Accounts: an analyst freezes; releasing the freeze needs a supervisor, and so does
    # labelling its order legit (the engine would release the account for it).
    account = {"target": ACCOUNT, "next": f"/accounts/{ACCOUNT}"}
    assert ana.act(action="freeze_account", **account, reason="attacker login")[0] == 303
    assert ana.act(action="release_account", mode="now", **account,
                   reason="customer called")[0] == 403
    status, page = ana.act(action="label_order", target=ORDER, label="legit", reason="looks fine")
    assert status == 403 and "labelling an order of a frozen account legit" in page
    assert ana.act(action="label_order", target=ORDER, label="fraud",
                   reason="customer denies placing it")[0] == 303
    assert sue.act(action="release_account", mode="now", **account,
                   reason="customer verified at branch")[0] == 303

    # A form without the session's CSRF token does nothing at all, and is audited as refused.
    status, _ = sue.act(action="freeze_account", **account, reason="forged", csrf="forged")
    assert status == 403

    def have_all(records):
        return len([1 for n, r in records if n == "audit" and r["action"] != "login"]) >= 12
    with TopicReader(engine_settings, "controls.tickers", "controls.accounts", "feedback",
                     "audit") as reader:
        records = reader.read_until(have_all, 20)
    audit = [r for n, r in records if n == "audit" and r["action"] != "login"]
    by_target = {}  # the audit topic is keyed by target: in order within one target
    for a in audit:
        by_target.setdefault(a["target"], []).append((a["actor"], a["action"], a["outcome"]))
    assert by_target == {
        TICKER: [("vic", "release_halt", "denied"), ("ana", "release_halt", "denied"),
                 ("ana", "release_halt", "proposed"), ("ana", "release_halt", "denied"),
                 ("ana", "extend_halt", "done"), ("abe", "release_halt", "failed"),
                 ("ana", "release_halt", "proposed"), ("abe", "release_halt", "done")],
        ACCOUNT: [("ana", "freeze_account", "done"), ("ana", "release_account", "denied"),
                  ("sue", "release_account", "done"), ("sue", "freeze_account", "denied")],
        ORDER: [("ana", "label_order", "denied"), ("ana", "label_order", "done")]}, by_target
    (refused,) = [a for a in audit if a["reason"] == "forged"]  # audited, and only as refused
    assert refused["outcome"] == "denied" and "CSRF" in refused["detail"]

    tickers = [r for n, r in records if n == "controls.tickers"]
    extended, released = tickers[1], tickers[2]
    assert extended["action"] == "halt_buys" and extended["source"] == "console:ana"
    assert extended["expires_at"] >= halt["expires_at"] + 30 * 60_000
    assert extended["evidence"]["accounts"] == halt["evidence"]["accounts"]
    assert released["action"] == "release" and released["source"] == "console:abe"
    assert released["evidence"]["proposed_by"]["user"] == "ana"
    assert released["reason"] == "results day, second try"
    (done,) = [a for a in audit if a["actor"] == "abe" and a["outcome"] == "done"]
    assert done["proposed_by"] == "ana" and done["after"] == released
    assert done["before"] == extended

    accounts = [r for n, r in records if n == "controls.accounts"]
    assert [(c["action"], c["source"]) for c in accounts] == [("freeze", "console:ana"),
                                                              ("release", "console:sue")]
    assert accounts[0]["evidence"]["operator"] == {"user": "ana", "role": "analyst",
                                                   "auth": "local"}
    (label,) = [r for n, r in records if n == "feedback"]
    assert label == {"account_id": ACCOUNT, "order_id": ORDER, "label": "fraud",
                     "source": "console:ana", "ts": label["ts"], "signature": label["signature"]}
    check(label, ControlKeys.development())  # signed: the engine may act on it


def test_logins_sessions_and_headers(engine_settings, console):
    anonymous = Client(console.url)
    assert anonymous.get("/api/summary")[0] == 401
    status, headers, _ = anonymous.get("/tickers/4592")
    assert status == 303 and headers["Location"] == "/login?next=/tickers/4592"

    ana = Client(console.url)
    assert ana.login("ana", "wrong password") == 401
    assert ana.login("ana", OPERATORS["ana"][1]) == 303
    cookie = [c for c in ana.set_cookies if c.startswith("__Host-tradeguard-session=")][-1]
    for attribute in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
        assert attribute in cookie, cookie
    status, headers, page = ana.get("/")
    assert status == 200 and "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-store" and headers["X-Frame-Options"] == "DENY"
    assert ana.get("/api/fragments/dashboard")[0] == 200

    # Logging out ends the session on the server, not just in the browser.
    old = ana.sid
    assert ana.request("POST", "/logout", {"csrf": ana.csrf()})[0] == 303
    ana.sid = old
    assert ana.get("/api/summary")[0] == 401

    # Five wrong passwords lock the name for a while, even against the right one.
    mallory = Client(console.url)
    for _ in range(5):
        assert mallory.login("sue", "guess") == 401
    assert mallory.login("sue", OPERATORS["sue"][1]) == 401

    with TopicReader(engine_settings, "audit") as reader:
        records = reader.read_until(lambda rs: len(rs) >= 9, 15)
    outcomes = [(r["actor"], r["action"], r["outcome"]) for _, r in records]
    assert [o for o in outcomes if o[0] == "ana"] == [
        ("ana", "login_failed", "denied"), ("ana", "login", "done"), ("ana", "logout", "done")]
    sue = [r for _, r in records if r["actor"] == "sue"]
    assert [(r["action"], r["outcome"]) for r in sue] == [("login_failed", "denied")] * 6
    assert sue[-1]["detail"].startswith("Too many failed logins; try again in ")
    secrets = ("wrong password", "guess", OPERATORS["ana"][1], OPERATORS["sue"][1])
    assert not [r for _, r in records if any(s in str(r) for s in secrets)]
