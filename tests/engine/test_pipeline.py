"""End to end on the embedded broker: a gateway's orders come back as decisions."""

from __future__ import annotations

import base64
import time

import orjson
import pytest

from streams.signing import ControlKeys, sign
from tradeguard.broker.clients import GatewayProducer, TopicReader

pytestmark = pytest.mark.broker

T0 = 1_760_000_000_000  # event time of the scripted session


def order(i: int, account: str, ticker: str = "7203", side: str = "buy", **extra) -> dict:
    return {"order_id": f"o-{i}", "account_id": account, "ticker": ticker, "side": side,
            "qty": 100, "price": 2500.0, "margin": False, "session_id": f"s-{account}",
            "ts": T0 + i, **extra}


def login(account: str, ts: int, device: str = "dev-home", ip: str = "203.0.113.5") -> dict:
    return {"account_id": account, "event": "login_success", "session_id": f"s-{account}",
            "ip": ip, "device_id": device, "user_agent": "Mozilla/5.0", "country": "JP",
            "asn": 2516, "ts": ts}


def decisions_by_order(records):
    out: dict[str, list[dict]] = {}
    for name, value in records:
        if name == "decisions":
            out.setdefault(value["order_id"], []).append(value)
    return out


def test_every_valid_order_gets_one_decision_and_bad_records_are_deadlettered(
        engine_settings, start_worker):
    worker = start_worker(engine_settings)
    gateway = GatewayProducer(engine_settings)
    accounts = [f"acct-{a}" for a in range(50)]
    for a in accounts:
        gateway.send("auth.events", login(a, T0 - 60_000))
    valid = [order(i, accounts[i % len(accounts)], ticker=("7203", "6758", "9984")[i % 3],
                   side="buy" if i % 4 else "sell") for i in range(3000)]
    good = order(99_999, "acct-x")
    bad = {
        "malformed_json": b'{"order_id": "x1", "account_id": ',
        "missing_field": orjson.dumps({k: v for k, v in good.items() if k != "ticker"}),
        "wrong_type": orjson.dumps({**good, "qty": "100"}),
        "negative_qty": orjson.dumps({**good, "qty": -5}),
        "unknown_side": orjson.dumps({**good, "side": "short"}),
        "not_an_object": b"[1, 2, 3]",
    }
    for i, o in enumerate(valid):
        gateway.send("orders", o)
        if i == 1500:  # bad records in the middle: the worker must keep going after them
            for raw in bad.values():
                gateway.send("orders", raw, key="acct-bad")
    gateway.send("auth.events", orjson.dumps({**login("acct-bad", T0), "event": "teleport"}),
                 key="acct-bad")
    gateway.flush()

    with TopicReader(engine_settings, "decisions", "deadletter") as reader:
        records = reader.read_until(
            lambda rs: len(decisions_by_order(rs)) >= len(valid)
            and sum(1 for n, _ in rs if n == "deadletter") >= len(bad) + 1,
            timeout_s=90)
        records += reader.poll(timeout_s=1.0)  # anything extra would be a duplicate

    decided = decisions_by_order(records)
    assert worker.alive, worker.log_tail()
    assert set(decided) == {o["order_id"] for o in valid}, worker.log_tail()
    assert all(len(ds) == 1 for ds in decided.values())
    by_id = {o["order_id"]: o for o in valid}
    for oid, (d,) in decided.items():
        assert d["account_id"] == by_id[oid]["account_id"]
        assert d["action"] in ("allow", "hold", "block") and 0 <= d["score"] <= 1
        assert d["model_version"] and d["order_ts"] == by_id[oid]["ts"]

    dead = [v for n, v in records if n == "deadletter"]
    errors = sorted(d["error"] for d in dead)
    assert len(dead) == len(bad) + 1, errors
    assert any(e.startswith("malformed JSON") for e in errors)
    assert "ticker: required field is missing" in errors
    assert "qty: expected integer, got string" in errors
    assert "qty: must be > 0, got -5" in errors
    assert "side: must be one of ['buy', 'sell'], got 'short'" in errors
    assert "expected a JSON object, got array" in errors
    assert any(e.startswith("event: must be one of") for e in errors)
    originals = {base64.b64decode(d["original_b64"]) for d in dead}
    assert set(bad.values()) <= originals
    assert all(d["source_topic"].endswith("orders") or d["source_topic"].endswith("auth.events")
               for d in dead)
    assert {d["field"] for d in dead} >= {"ticker", "qty", "side", "event", None}


def test_halted_ticker_blocks_buys_not_sells_and_the_halt_expires(engine_settings,
                                                                  start_worker):
    gateway = GatewayProducer(engine_settings)
    # Reference data written before the worker starts: it reads the compacted topic whole
    # before it decides anything (no snapshot holds it).
    gateway.send("reference.tickers", {
        "ticker": "6501", "market": "JP", "venue": "TSE", "currency": "JPY", "lot": 100,
        "listing_date": "1949-05-16", "shares_outstanding": 4_600_000_000,
        "reference_price": 2500.0, "normal_daily_value": 4e8, "ts": T0 - 86_400_000})
    gateway.flush()
    worker = start_worker(engine_settings)
    with TopicReader(engine_settings, "decisions", "controls.tickers") as reader:
        seen: list = []

        def wait_for(done, timeout_s):
            seen.extend(reader.read_until(lambda rs: done(seen + rs), timeout_s))
            assert done(seen), worker.log_tail()

        # A first order proves the worker is consuming before the clock of the halt starts.
        gateway.send("auth.events", login("acct-h", T0 - 1000))
        gateway.flush()  # the login on the broker first: the order is decided in its session
        gateway.send("orders", order(0, "acct-h", ticker="7203"))
        gateway.flush()
        wait_for(lambda rs: "o-0" in decisions_by_order(rs), 60)
        # Two tickers with no trades: one the reference data values at 400M yen a day, one
        # unknown (valued as a penny stock). 10M yen each. Both ratios are strong reasons
        # (weight 3, full at 0.05): a weak one can fall out of the four reasons a decision
        # keeps when another signal is present, e.g. the login read after the first order.
        gateway.send("orders", order(4, "acct-h", ticker="6501", qty=4_000))
        gateway.send("orders", order(5, "acct-h", ticker="6502", qty=4_000))
        gateway.flush()
        wait_for(lambda rs: {"o-4", "o-5"} <= set(decisions_by_order(rs)), 30)
        decided = decisions_by_order(seen)
        thin = {oid: [r["value"] for r in decided[oid][0]["reasons"]
                      if r["code"] == "thin_ticker_notional_x_adv"] for oid in ("o-4", "o-5")}
        assert thin == {"o-4": [pytest.approx(1e7 / 4e8)], "o-5": [pytest.approx(0.5)]}, decided

        # Halts are judged in event time: in force from their ts until expires_at.
        halt_s = 4
        gateway.send("controls.tickers", sign({  # signed: the engine enforces no other
            "ticker": "4592", "action": "halt_buys", "reason": "analyst: targeted ticker",
            "evidence": {"accounts": ["a1", "a2"]}, "expires_at": T0 + halt_s * 1000,
            "source": "analyst", "ts": T0, "seq": 1}, ControlKeys.development()))
        gateway.flush()
        wait_for(lambda rs: any(n == "controls.tickers" for n, _ in rs), 30)
        # The worker's replicated board reads the halt on a thread of its own: wait until it
        # enforces it, seen on a probe buy of another account inside the halt, not a guess.
        # (One account's buy cannot make an engine halt of its own on this ticker.)
        probe = 0
        deadline = time.monotonic() + 30

        def probe_blocked(rs) -> bool:
            ds = decisions_by_order(rs).get(f"o-probe-{probe}")
            return bool(ds) and ds[0]["reasons"][:1] == [{"code": "ticker_halted", "value": 1.0}]

        while True:
            probe += 1
            gateway.send("orders", {**order(1, "acct-probe", ticker="4592"),
                                    "order_id": f"o-probe-{probe}"})
            gateway.flush()
            wait_for(lambda rs: f"o-probe-{probe}" in decisions_by_order(rs), 30)
            if probe_blocked(seen):
                break
            assert time.monotonic() < deadline, "the halt was never enforced"
        gateway.send("orders", order(1, "acct-h", ticker="4592", side="buy"))
        gateway.send("orders", order(2, "acct-h", ticker="4592", side="sell"))
        # After the expiry (in the orders' time, however late they arrive) buys pass again.
        gateway.send("orders", {**order(3, "acct-h", ticker="4592", side="buy"),
                                "ts": T0 + halt_s * 1000})
        gateway.flush()
        wait_for(lambda rs: {"o-1", "o-2", "o-3"} <= set(decisions_by_order(rs)), 30)
        decided = decisions_by_order(seen)
        assert decided["o-1"][0]["action"] == "block"
        assert decided["o-1"][0]["reasons"][0] == {"code": "ticker_halted", "value": 1.0}
        assert decided["o-2"][0]["action"] == "allow"
        assert all(r["code"] != "ticker_halted" for r in decided["o-2"][0]["reasons"])
        (d3,) = decided["o-3"]
        assert all(r["code"] != "ticker_halted" for r in d3["reasons"])
        assert d3["action"] == "allow"
