"""Ticker reference data in the decision core: a ticker with no trades is valued by what the
instrument master says, from the record's event time on; its own trades win once they speak."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeguard.core import InProcessEngine
from tradeguard.core.partition import Inputs, Shared
from tradeguard.core.profiles import NO_PROFILE, ProfileBook

T0 = 1_760_000_000_000
LAG = 60_000


def reference(ticker: str, ts: int, value: float | None, price: float = 2500.0) -> dict:
    return {"ticker": ticker, "market": "JP", "venue": "TSE", "currency": "JPY", "lot": 100,
            "listing_date": "2011-06-01", "shares_outstanding": 120_000_000,
            "reference_price": price, "normal_daily_value": value, "ts": ts}


def same(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b))


def test_trades_win_over_the_reference_once_their_profile_is_visible():
    book = ProfileBook(lag_ms=LAG)
    book.apply_reference([reference("7203", T0, 3e10, 2500.0)])
    assert book.at("7203", T0 - 1) is NO_PROFILE  # not valid yet
    assert book.at("7203", T0) == (3e10, 2500.0)  # valid from its own ts, no lag
    book.apply("7203", T0 + 60_000, 2e10, 2510.0)
    assert book.at("7203", T0 + 60_000 + LAG - 1) == (3e10, 2500.0)
    assert book.at("7203", T0 + 60_000 + LAG) == (2e10, 2510.0)
    book.apply_reference([reference("7203", T0 + 3_600_000, 9e10, 2600.0)])
    assert book.at("7203", T0 + 7_200_000) == (2e10, 2510.0)  # trades still win


def test_a_new_listing_has_no_value_but_its_offer_price():
    book = ProfileBook(lag_ms=LAG)
    book.apply_reference([reference("4599", T0, None, 800.0)])
    value, price = book.at("4599", T0 + 1)
    assert math.isnan(value) and price == 800.0
    # the next day's master has a normal value for it: from that record's ts on
    book.apply_reference([reference("4599", T0 + 86_400_000, 4e8, 900.0)])
    assert book.at("4599", T0 + 86_400_000) == (4e8, 900.0)
    assert math.isnan(book.at("4599", T0 + 86_399_999)[0])


def test_the_same_reference_read_twice_is_held_once_and_a_correction_replaces_it():
    book = ProfileBook(lag_ms=LAG)
    for _ in range(3):  # the compacted topic read again after a reconnect
        book.apply_reference([reference("7203", T0, 3e10)])
    assert len(book._reference["7203"]) == 1
    book.apply_reference([reference("7203", T0, 5e10)])
    assert book.at("7203", T0) == (5e10, 2500.0)


def test_shared_takes_the_reference_topic_and_inputs_send_it_there():
    shared = Shared()
    shared.apply("reference.tickers", [reference("7203", T0, 3e10)])
    assert shared.profiles.at("7203", T0) == (3e10, 2500.0)
    with pytest.raises(ValueError, match="'reference.tickers' is shared by every partition"):
        Inputs().add("reference.tickers", [reference("7203", T0, 3e10)])
    with pytest.raises(ValueError, match="'orders' is not shared"):
        shared.apply("orders", [])


versions = st.lists(st.tuples(st.integers(0, 40), st.floats(0, 1e12), st.floats(1, 1e6)),
                    max_size=12, unique_by=lambda v: v[0])
references = st.lists(st.tuples(st.integers(0, 40), st.none() | st.floats(0, 1e12),
                                st.floats(1, 1e6)), max_size=12, unique_by=lambda v: v[0])


@settings(max_examples=300, deadline=None)
@given(versions, references, st.integers(-5, 50), st.randoms(use_true_random=False))
def test_the_book_answers_as_the_plain_rule_whatever_order_records_arrive_in(
        traded, referenced, minute, rng):
    """Latest trade profile published a lag before; else latest reference valid at ts."""
    book = ProfileBook(lag_ms=LAG)
    arrivals = [("trade", v) for v in traded] + [("reference", r) for r in referenced]
    rng.shuffle(arrivals)
    for kind, (m, value, price) in arrivals:
        if kind == "trade":
            book.apply("X", T0 + m * 60_000, value, price)
        else:
            book.apply_reference([reference("X", T0 + m * 60_000, value, price)])
    ts = T0 + minute * 60_000 + random.Random(minute).randrange(60_000)
    seen = [v for v in traded if T0 + v[0] * 60_000 <= ts - LAG]
    valid = [r for r in referenced if T0 + r[0] * 60_000 <= ts]
    if seen:
        want = max(seen)[1:]
    elif valid:
        _, value, price = max(valid, key=lambda r: r[0])
        want = (math.nan if value is None else value, price)
    else:
        want = NO_PROFILE
    assert same(book.at("X", ts), want)


# -- in process: the account side values the buy by the reference -------------------------

def login(account: str, ts: int) -> dict:
    return {"account_id": account, "event": "login_success", "session_id": f"s-{account}",
            "ip": "203.0.113.5", "device_id": "dev-home", "user_agent": "Mozilla/5.0",
            "country": "JP", "asn": 2516, "ts": ts}


def buy(oid: str, account: str, ticker: str, ts: int) -> dict:
    # 4,000 shares at 2,500 yen: 10M yen, half a penny stock's daily value
    return {"order_id": oid, "account_id": account, "ticker": ticker, "side": "buy",
            "qty": 4_000, "price": 2500.0, "margin": False, "session_id": f"s-{account}",
            "ts": ts}


def thin(decision: dict) -> float:
    return next((r["value"] for r in decision["reasons"]
                 if r["code"] == "thin_ticker_notional_x_adv"), 0.0)


@pytest.mark.parametrize("normal_daily_value, thin_x", [
    (None, 0.5),       # no reference at all: valued as a penny stock (20M yen a day)
    ("new", 0.5),      # a new listing: no normal value yet, still a penny stock
    (5e10, 0.0002),    # a large cap that has not traded yet today
])
def test_a_buy_of_a_ticker_with_no_trades_is_thin_unless_the_reference_says_liquid(
        normal_daily_value, thin_x):
    records = []
    if normal_daily_value is not None:
        value = None if normal_daily_value == "new" else normal_daily_value
        records.append(("reference.tickers", reference("6758", T0 - 86_400_000, value)))
    records += [("auth.events", login("acct-1", T0 - 7_200_000)),
                ("auth.events", login("acct-1", T0 - 3_600_000)),
                ("orders", buy("o-1", "acct-1", "6758", T0))]
    decisions = {}
    for out in InProcessEngine().run(records):
        decisions.update({d["order_id"]: d for d in out.decisions.rows()})
    assert thin(decisions["o-1"]) == pytest.approx(thin_x), decisions["o-1"]
