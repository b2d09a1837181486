"""Checks that any simulated session must pass, shared by the example and property tests."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from streams.topics import topic
from tradeguard.simulator import Session

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def check_records_valid(session: Session) -> None:
    """Every record validates against its topic's schema, and the stream is in event-time order."""
    last = -1
    for name, record in session.records:
        topic(name).schema.validate(record)
        assert record["ts"] >= last, f"{name} record out of event-time order: {record}"
        last = record["ts"]


def check_books(session: Session) -> None:
    """Replaying the orders over the opening books never sells what is not held."""
    positions = {a: dict(b["positions"]) for a, b in session.opening_books.items()}
    for order in session.of("orders"):
        held = positions[order["account_id"]]
        if order["side"] == "sell":
            assert order["qty"] <= held.get(order["ticker"], 0), f"sells more than held: {order}"
            held[order["ticker"]] -= order["qty"]
        else:
            held[order["ticker"]] = held.get(order["ticker"], 0) + order["qty"]


def check_sessions(session: Session) -> None:
    """Orders sit in a session their account opened earlier; only fraud may come from elsewhere.

    Legitimate orders come from the very ip/device/agent that logged in; AiTM
    fraud orders ride a victim's session from the attacker's machine.
    """
    opened: dict[str, dict] = {}
    fraud = session.truth.fraud_order_ids
    for name, r in session.records:
        if name == "auth.events" and r["event"] == "login_success":
            opened[r["session_id"]] = r
        elif name == "orders":
            login = opened.get(r["session_id"])
            assert login is not None, f"order in a session nobody opened: {r}"
            assert login["account_id"] == r["account_id"]
            same = all(login[k] == r[k] for k in ("ip", "device_id", "user_agent"))
            assert same or r["order_id"] in fraud, f"legit order off its login's context: {r}"


def check_truth(session: Session) -> None:
    """Ground truth agrees with the streams."""
    truth = session.truth
    orders = {r["order_id"]: r for r in session.of("orders")}
    takeovers = {a.account_id: a for a in truth.accounts}
    assert len(orders) == sum(1 for _ in session.of("orders")), "order ids are not unique"
    by_account = defaultdict(list)
    for f in truth.fraud_orders:
        r = orders[f.order_id]  # every fraudulent order exists
        assert (r["account_id"], r["ticker"], r["side"], r["qty"], r["ts"]) == (
            f.account_id, f.ticker, f.side, f.qty, f.ts)
        a = takeovers[f.account_id]  # ... in a taken-over account ...
        assert a.takeover_ts is not None and f.ts >= a.takeover_ts  # ... after the takeover
        assert f.ts >= a.access_ts
        by_account[f.account_id].append(f)
    targets = {c.name: set(c.targets) for c in truth.campaigns}
    for f in truth.fraud_orders:  # buys of the campaign's targets; sells of everything else
        assert (f.phase == "pump") == (f.side == "buy")
        assert (f.ticker in targets[f.campaign]) == (f.side == "buy")
    for a in truth.accounts:
        own = by_account.get(a.account_id, [])
        assert a.traded == bool(own)
        buys = [f.ts for f in own if f.side == "buy"]
        assert a.first_fraud_buy_ts == min(buys, default=None)
        assert a.first_fraud_ts == min((f.ts for f in own), default=None)
    for t in truth.tickers:
        buys = [f for f in truth.fraud_orders if f.ticker == t.ticker and f.side == "buy"]
        assert t.fraud_buys == len(buys)
        assert t.first_fraud_buy_ts == min((f.ts for f in buys), default=None)
    for c in truth.campaigns:
        traded = [a for a in truth.accounts if a.campaign == c.name and a.traded]
        if traded:  # a campaign that traded bought every one of its targets
            assert set(c.targets) <= {f.ticker for f in truth.fraud_orders if f.side == "buy"}
    victims = set(takeovers)
    for n in truth.negatives:
        assert not victims & set(n.accounts)
        for order_id in n.order_ids:
            assert order_id in orders and order_id not in truth.fraud_order_ids
            assert orders[order_id]["account_id"] in n.accounts
    for h in truth.accomplices:
        assert h.account_id not in victims
        for order_id in h.order_ids:
            assert orders[order_id]["account_id"] == h.account_id


def check_warmup(session: Session) -> None:
    """Every account that acts in the session logged in (and ordered) before it opened."""
    logged_in, ordered = set(), set()
    for name, r in session.records:
        if r["ts"] >= session.open_ms:
            break
        if name == "auth.events" and r["event"] == "login_success":
            logged_in.add(r["account_id"])
        if name == "orders":
            ordered.add(r["account_id"])
    active = {r["account_id"] for r in session.of("auth.events") if r["ts"] >= session.open_ms}
    assert active <= logged_in
    victims = {a.account_id for a in session.truth.accounts}
    assert victims <= logged_in and victims <= ordered


def check_all(session: Session) -> None:
    check_records_valid(session)
    check_books(session)
    check_sessions(session)
    check_truth(session)
    check_warmup(session)
