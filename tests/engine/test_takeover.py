"""The scripted takeover on the real broker: holds and blocks, a timely halt, account controls."""

from __future__ import annotations

import io

import pytest

from streams.signing import ControlKeys, check
from tradeguard.demo.run import replay_session
from tradeguard.demo.session import TARGET, scripted_session

pytestmark = pytest.mark.broker


def test_scripted_takeover_is_stopped_and_the_steady_customer_is_not(engine_settings,
                                                                     start_worker):
    script = scripted_session(minutes=14, accounts=24, hijacked=4)
    worker = start_worker(engine_settings)
    progress, _ = replay_session(engine_settings, script, speed=60.0, out=io.StringIO())
    decisions = progress.decisions
    assert worker.alive, worker.log_tail()
    assert len(decisions) == script.order_count

    # Every attacker order is held or blocked before it can execute.
    fraud = {o: decisions[o] for o in script.fraud_orders}
    allowed = [(d["account_id"], d["side"], d["ticker"], d["score"], d["reasons"])
               for d in fraud.values() if d["action"] == "allow"]
    assert not allowed, allowed

    # The thin ticker is halted at the latest with the third hijacked account's buy: the
    # first two attackers' logins share no device or IP yet (the campaign's second proxy IP
    # is first used by the third), so two risky buyers are not enough, three are. Every
    # hijacked buy is blocked, the later ones for the halt.
    (halt,) = [h for h in progress.halts if h["ticker"] == TARGET]
    pump_buys = sorted((d for d in fraud.values() if d["side"] == "buy"),
                       key=lambda d: d["order_ts"])
    third = pump_buys[2]
    assert halt["ts"] <= third["order_ts"], (halt, [(d["account_id"], d["ts"]) for d in pump_buys])
    assert all(d["action"] == "block" for d in pump_buys), pump_buys
    assert all(d["reasons"][0] == {"code": "ticker_halted", "value": 1.0} for d in pump_buys[3:])
    assert set(halt["evidence"]["accounts"]) <= set(script.hijacked)
    assert halt["expires_at"] > halt["ts"]

    # Each hijacked account is put under step-up or freeze.
    controlled = {c["account_id"]: c["action"] for c in progress.account_controls}
    for account in script.hijacked:
        assert controlled.get(account) in ("step_up", "freeze"), controlled
    assert script.steady_account not in controlled
    # Every control the engine published is signed: other workers and gateways enforce no other.
    for control in progress.halts + progress.account_controls:
        check(control, ControlKeys.development())

    # The legitimate customer trading the same large caps all session is never held.
    steady = [d for d in decisions.values() if d["account_id"] == script.steady_account]
    assert len(steady) >= 10
    assert all(d["action"] == "allow" for d in steady), steady
    # ...and the customer on a new phone passes too.
    phone = [d for d in decisions.values() if d["account_id"] == script.new_phone_account]
    assert phone and all(d["action"] == "allow" for d in phone), phone
