"""A slow campaign cannot launder a thin-stock buy with a small habit: an account warmed with
one small thin buy in an earlier session, then taken over by an infostealer (a new device and
agent at the customer's own network), still has its buy of half a thin ticker's day held with
the thin-ticker reason; the customer who always buys that much is not held for it."""

from __future__ import annotations

import pytest

from tradeguard.core import InProcessEngine

T0 = 1_760_000_000_000
MIN = 60_000
DAY = 1440 * MIN
HOME = {"ip": "203.0.113.5", "device_id": "dev-home", "user_agent": "KabuApp/30.1 (iPhone)",
        "country": "JP", "asn": 2516}
# An infostealer's replay of the password from the customer's own network: only the device
# and its agent are new (3.5 + 0.7 of evidence), so the order decides the hold.
STEALER = {**HOME, "device_id": "dev-evil", "user_agent": "Mozilla/5.0 (evil)"}
# Untraded tickers are valued as penny stocks (20M yen a day): 100 x 2,500 yen is 1.25% of
# one's day, 4,000 x 2,500 yen half of it.
SMALL, LARGE = 100, 4000


def login(ts, where, session):
    return ("auth.events", {"account_id": "acct-1", "event": "login_success", "session_id": session,
                            **where, "ts": ts})


def buy(order_id, ts, where, session, ticker, qty):
    return ("orders", {"order_id": order_id, "account_id": "acct-1", "ticker": ticker, "side": "buy",
                       "qty": qty, "price": 2500.0, "margin": False, "session_id": session,
                       "ip": where["ip"], "device_id": where["device_id"],
                       "user_agent": where["user_agent"], "holdings_value": 5_000_000.0, "ts": ts})


def decide(habit: list[int]):
    """The account buys ``habit`` lots of a new untraded ticker in each earlier session at home;
    then the stealer logs in and buys LARGE lots of another. The big buy's decision."""
    records = []
    for day, qty in enumerate(habit):
        t = T0 + day * DAY
        records += [login(t, HOME, f"s-{day}"), buy(f"habit-{day}", t + MIN, HOME, f"s-{day}",
                                                     f"91{day:02d}", qty)]
    t = T0 + len(habit) * DAY
    records += [login(t, STEALER, "s-stolen"), buy("big", t + MIN, STEALER, "s-stolen", "9999", LARGE)]
    decisions = {d["order_id"]: d for out in InProcessEngine().run(records)
                 for d in out.decisions.rows()}
    return decisions["big"]


@pytest.mark.parametrize("habit", [[SMALL], [SMALL] * 3, [1, SMALL, SMALL // 2]],
                         ids=["one small thin buy", "three", "small and tiny"])
def test_small_thin_buys_in_earlier_sessions_do_not_launder_a_far_larger_one(habit):
    big = decide(habit)
    codes = [r["code"] for r in big["reasons"]]
    assert "thin_ticker_notional_x_adv" in codes, big
    assert big["action"] == "hold", big


def test_the_customer_who_always_buys_that_much_is_not_held_for_it():
    big = decide([LARGE] * 3)
    assert "thin_ticker_notional_x_adv" not in [r["code"] for r in big["reasons"]], big
    assert big["action"] == "allow", big
