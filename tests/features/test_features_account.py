"""What each account feature means, pinned on small hand-made stories."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeguard.features import (ACCOUNT_FEATURES, LOGIN_FAILURE, LOGIN_SUCCESS, AccountFeatures,
                                 AuthBatch, OrderBatch)
from tradeguard.features.account import HABIT_SESSION_KEEP
from tradeguard.features.ids import stable_hash64

pytestmark = pytest.mark.quick  # pure and fast: `python -m pytest -m quick`

T0 = 1_700_000_000_000
MIN = 60_000


def auth(f, *events):
    """Feed auth events given as dicts over a default login."""
    rows = [{"account": 0, "kind": LOGIN_SUCCESS, "ts_ms": T0, "session": 1, "ip": 10, "device": 20,
             "asn": 30, "country": 40, "user_agent": 50, **e} for e in events]
    f.learn_auth(AuthBatch.from_columns(**{k: [r[k] for r in rows] for k in rows[0]}))


def orders(f, *events):
    """Features of orders given as dicts over a default cash buy, as {name: column}."""
    rows = [{"account": 0, "ticker": 1, "is_buy": True, "qty": 100.0, "price": 1000.0, "margin": False,
             "overseas": False, "ts_ms": T0 + MIN, "session": 1, "ip": 10, "device": 20, "user_agent": 50,
             "holdings_value": np.nan, "ticker_adv_value": np.nan, **e} for e in events]
    x = f.transform_orders(OrderBatch.from_columns(**{k: [r[k] for r in rows] for k in rows[0]}))
    return {name: x[:, j] for j, name in enumerate(ACCOUNT_FEATURES)}


def test_state_is_bounded_per_account():
    f = AccountFeatures()
    assert f.bytes_per_account < 512
    orders(f, {"account": 5000})
    assert f._accounts.shape[0] >= 5001 and f.bytes_per_account < 512


def test_first_login_has_nothing_to_be_new_against():
    f = AccountFeatures()
    auth(f, {})
    x = orders(f, {})
    assert [x[n][0] for n in ("new_device", "new_ip", "new_asn", "new_country", "new_user_agent")] == [0] * 5


def test_a_device_is_new_once():
    f = AccountFeatures()
    auth(f, {"session": 1}, {"session": 2, "device": 99, "ts_ms": T0 + MIN},
         {"session": 3, "device": 99, "ts_ms": T0 + 2 * MIN})
    x = orders(f, *({"session": s, "device": 99, "ts_ms": T0 + 3 * MIN} for s in (1, 2, 3)))
    assert x["new_device"].tolist() == [0, 1, 0]
    assert x["new_ip"].tolist() == [0, 0, 0]


def test_each_login_attribute_has_its_own_flag():
    f = AccountFeatures()
    auth(f, {}, {"ts_ms": T0 + MIN, "session": 2, "asn": 31, "country": 41, "user_agent": 51, "ip": 11})
    x = orders(f, {"session": 2, "ip": 11, "user_agent": 51, "ts_ms": T0 + 2 * MIN})
    assert [x[n][0] for n in ("new_device", "new_ip", "new_asn", "new_country", "new_user_agent")] == [0, 1, 1, 1, 1]


def test_secs_since_login_uses_the_session_else_the_last_login():
    f = AccountFeatures()
    x = orders(f, {"session": 1})
    assert x["secs_since_login"][0] == 1e6  # never logged in
    auth(f, {"session": 1, "ts_ms": T0}, {"session": 2, "ts_ms": T0 + 30_000})
    x = orders(f, {"session": 1, "ts_ms": T0 + 90_000}, {"session": 2, "ts_ms": T0 + 90_000},
               {"session": 77, "ts_ms": T0 + 90_000})
    assert x["secs_since_login"].tolist() == [90.0, 60.0, 60.0]


def test_failed_logins_before_are_a_decayed_count():
    f = AccountFeatures()  # half-life 15 min
    auth(f, *({"kind": LOGIN_FAILURE, "ts_ms": T0} for _ in range(3)),
         {"kind": LOGIN_SUCCESS, "ts_ms": T0, "session": 1},
         {"kind": LOGIN_SUCCESS, "ts_ms": T0 + 30 * MIN, "session": 2})
    x = orders(f, {"session": 1, "ts_ms": T0 + 31 * MIN}, {"session": 2, "ts_ms": T0 + 31 * MIN})
    assert x["failed_logins_before"] == pytest.approx([3.0, 0.75])


def test_session_mismatch_is_cookie_replay():
    """Another device or agent on a session is a replayed cookie (1); another IP alone, one the
    account never used, three quarters of it (0.75): a phone changing networks looks the same,
    but moves between networks it has used (0.5, the next test)."""
    f = AccountFeatures()
    auth(f, {"session": 1, "ip": 10, "device": 20})
    x = orders(f, {"ip": 10}, {"ip": 666}, {"device": 666}, {"user_agent": 666}, {"ip": 0, "device": 0},
               {"session": 2, "ip": 666}, {"ip": 666, "device": 666})
    assert x["session_mismatch"].tolist() == [0, 0.75, 1, 1, 0, 0, 1]


def test_baselines_come_from_earlier_sessions_only():
    """A whole-position sell and a thin buy are usual for an account that did them in earlier
    sessions; an attacker's burst never becomes usual within its own session."""
    f = AccountFeatures()
    whole_sell = {"is_buy": False, "qty": 100.0, "price": 1000.0, "holdings_value": 1e5}
    thin_buy = {"is_buy": True, "qty": 100.0, "price": 1000.0, "ticker_adv_value": 1e6}
    for day in range(3):  # three sessions: sell everything, then buy 10% of a thin ticker's day
        t = T0 + day * 86_400_000
        auth(f, {"session": 10 + day, "ts_ms": t})
        x = orders(f, {**whole_sell, "session": 10 + day, "ts_ms": t + MIN},
                   {**thin_buy, "session": 10 + day, "ts_ms": t + 2 * MIN},
                   {**thin_buy, "session": 10 + day, "ts_ms": t + 3 * MIN})
        if day == 0:  # nothing before: no baseline, however often it happens now
            assert x["usual_liquidation"].tolist() == [0, 0, 0]
            assert x["usual_thin_buy"].tolist() == [0, 0, 0]
    assert x["usual_thin_buy"].tolist() == [1, 1, 1]
    # Day 0's episode closed on day 1 and joined day 1's part; folded in on day 2.
    assert x["usual_liquidation"].tolist() == [1, 1, 1]
    assert x["liquidation_ratio"][0] == 1


def thin_buys_in_sessions(f, shares, adv=2e7):
    """One session per share: a login, then a buy worth that share of a ticker's day."""
    for day, share in enumerate(shares):
        t = T0 + day * 86_400_000
        auth(f, {"session": 10 + day, "ts_ms": t})
        orders(f, {"session": 10 + day, "ts_ms": t + MIN, "ticker": 100 + day, "qty": 1.0,
                   "price": share * adv, "ticker_adv_value": adv})
    return T0 + len(shares) * 86_400_000


@settings(max_examples=60, deadline=None, database=None)
@given(small=st.lists(st.floats(0.005, 0.02), min_size=1, max_size=4), times=st.floats(10.0, 100.0))
def test_a_habit_of_small_thin_buys_does_not_make_a_far_larger_one_usual(small, times):
    """Slow campaign: a hijacked account warmed with small thin buys (1.25% of a ticker's
    day was enough to read as a full thin buyer) then buys many times that. The baseline
    discounts the big buy by how usual its size is: at most the usual share over its own."""
    f = AccountFeatures()
    t = thin_buys_in_sessions(f, small)
    big = max(small) * times
    auth(f, {"session": 99, "ts_ms": t})
    x = orders(f, {"session": 99, "ts_ms": t + MIN, "ticker": 7, "qty": 1.0, "price": big * 2e7,
                   "ticker_adv_value": 2e7})
    assert x["thin_ticker_notional_x_adv"][0] == pytest.approx(big)
    assert x["usual_thin_buy"][0] <= max(small) / big * (1 + 1e-9)


@settings(max_examples=60, deadline=None, database=None)
@given(shares=st.lists(st.floats(0.01, 0.5), min_size=1, max_size=4))
def test_a_thin_buy_no_larger_than_the_accounts_usual_ones_stays_usual(shares):
    """The habitual thin-stock trader: a buy no larger than its usual share of a ticker's
    day (the sessions' decayed mean) is fully usual (no new evidence); half again its
    largest is mostly usual."""
    f = AccountFeatures()
    t = thin_buys_in_sessions(f, shares)
    auth(f, {"session": 99, "ts_ms": t})
    weights = [HABIT_SESSION_KEEP ** k for k in reversed(range(len(shares)))]  # recent count more
    usual = sum(w * share for w, share in zip(weights, shares)) / sum(weights)
    x = orders(f, *({"session": 99, "ts_ms": t + MIN, "ticker": 7, "qty": 1.0,
                     "price": share * 2e7, "ticker_adv_value": 2e7}
                    for share in (usual, min(shares), 1.5 * max(shares))))
    assert x["usual_thin_buy"][:2] == pytest.approx([1.0, 1.0])
    assert x["usual_thin_buy"][2] >= 1 / 1.5 * min(shares) / max(shares) - 1e-12


def test_a_habit_of_small_sell_episodes_does_not_make_selling_everything_usual():
    """Reviewed with the thin-buy baseline: usual_liquidation is the mean share sold per
    episode, so a habit of selling 5% discounts a sell-off by about 5%, not fully."""
    f = AccountFeatures()
    for day in range(3):
        t = T0 + day * 86_400_000
        auth(f, {"session": 10 + day, "ts_ms": t})
        x = orders(f, {"session": 10 + day, "ts_ms": t + MIN, "is_buy": False, "qty": 50.0,
                       "price": 1000.0 if day < 2 else 20_000.0, "holdings_value": 1e6})
    # Day 0's episode joined day 1's part when day 1's sell opened its own; folded in on day 2.
    assert x["liquidation_ratio"][0] == 1.0
    assert x["usual_liquidation"][0] == pytest.approx(0.05)


def test_cold_start_flags_the_first_login_and_foreign_networks():
    f = AccountFeatures()  # home country JP
    jp, kr = int(stable_hash64("JP")), int(stable_hash64("KR"))
    auth(f, {"session": 1, "ts_ms": T0, "country": kr}, {"session": 2, "ts_ms": T0 + MIN, "country": jp},
         {"session": 3, "ts_ms": T0 + 2 * MIN, "country": 0})
    x = orders(f, *({"session": s, "ts_ms": T0 + 3 * MIN} for s in (1, 2, 3)))
    assert x["unknown_account"].tolist() == [1, 0, 0]
    assert x["foreign_first_login"].tolist() == [1, 0, 0]
    auth(f, {"session": 4, "ts_ms": T0 + 4 * MIN, "country": kr})  # known by now: new_country
    assert orders(f, {"session": 4, "ts_ms": T0 + 5 * MIN})["foreign_first_login"].tolist() == [0]


def test_liquidation_ratio_is_sold_share_of_holdings_at_the_first_sell():
    f = AccountFeatures()
    x = orders(f, *({"is_buy": False, "qty": 300.0, "price": 1000.0, "holdings_value": h,
                     "ts_ms": T0 + k * MIN} for k, h in enumerate([1e6, 7e5, 4e5])),
               {"is_buy": True, "ts_ms": T0 + 5 * MIN},
               {"is_buy": True, "ts_ms": T0 + 16 * MIN})
    assert x["liquidation_ratio"] == pytest.approx([0.3, 0.6, 0.9, 0.9, 0.0])


def test_selling_everything_clips_at_one_and_unknown_holdings_read_zero():
    f = AccountFeatures()
    x = orders(f, {"is_buy": False, "qty": 2000.0, "holdings_value": 1e6},
               {"account": 1, "is_buy": False, "holdings_value": np.nan})
    assert x["liquidation_ratio"].tolist() == [1.0, 0.0]


def test_first_buy_of_ticker_and_first_overseas_trade():
    f = AccountFeatures()
    x = orders(f, {"ticker": 1}, {"ticker": 2}, {"ticker": 2}, {"ticker": 3, "is_buy": False},
               {"ticker": 3}, {"ticker": 4, "overseas": True}, {"ticker": 5, "overseas": True})
    assert x["first_buy_of_ticker"].tolist() == [0, 1, 0, 0, 0, 1, 1]  # the very first order has no history
    assert x["first_overseas_trade"].tolist() == [0, 0, 0, 0, 0, 1, 0]


def test_thin_ticker_notional_counts_buys_against_adv():
    f = AccountFeatures()
    x = orders(f, {"qty": 1000.0, "ticker_adv_value": 1e8}, {"is_buy": False, "ticker_adv_value": 1e8},
               {"ticker_adv_value": np.nan})
    assert x["thin_ticker_notional_x_adv"].tolist() == pytest.approx([0.01, 0.0, 0.0])


def test_sudden_margin_only_for_accounts_that_never_use_it():
    f = AccountFeatures()
    cash = [{"ts_ms": T0 + k * MIN} for k in range(10)]
    margin_user = [{"account": 1, "margin": True, "ts_ms": T0 + k * MIN} for k in range(10)]
    x = orders(f, {"margin": True, "account": 2}, *cash, *margin_user,
               {"margin": True, "ts_ms": T0 + 20 * MIN}, {"account": 1, "margin": True, "ts_ms": T0 + 20 * MIN})
    assert x["sudden_margin"][0] == 0  # first order: no habit yet
    assert x["sudden_margin"][-2:].tolist() == [1, 0]


def test_order_rate_reads_one_when_steady_and_high_in_a_burst():
    f = AccountFeatures()
    steady = orders(f, *({"ts_ms": T0 + k * 30_000} for k in range(5_000)))["order_rate_x_usual"]
    assert steady[0] == 1.0 and steady[-1] == pytest.approx(1.0, abs=0.1)
    g = AccountFeatures()
    daily = [{"ts_ms": T0 + k * 86_400_000} for k in range(20)]
    burst = [{"ts_ms": T0 + 20 * 86_400_000 + k * 2_000} for k in range(20)]
    rate = orders(g, *daily, *burst)["order_rate_x_usual"]
    assert rate[-1] > 100 * rate[19]


def test_notional_against_the_accounts_usual_size():
    f = AccountFeatures()
    x = orders(f, *({"ts_ms": T0 + k * MIN} for k in range(10)), {"qty": 10_000.0, "ts_ms": T0 + 11 * MIN})
    assert x["notional_x_usual"][0] == 1.0
    assert x["notional_x_usual"][-1] == pytest.approx(100.0)


def test_bad_records_name_their_column():
    f = AccountFeatures()
    with pytest.raises(ValueError, match="AuthBatch.kind: row 1"):
        auth(f, {}, {"kind": 9})
    with pytest.raises(ValueError, match="OrderBatch.account: row 0"):
        orders(f, {"account": -1})


def test_usual_device_is_a_known_accounts_own_device_abroad_not_a_new_or_absent_one():
    f = AccountFeatures()
    auth(f, {"session": 1},                                               # first login: unknown
         {"session": 2, "ts_ms": T0 + MIN, "ip": 11, "asn": 31, "country": 41},  # own phone abroad
         {"session": 3, "ts_ms": T0 + MIN, "device": 99, "ip": 12},       # a device never seen
         {"session": 4, "ts_ms": T0 + MIN, "device": 0, "ip": 13})        # no device id at all
    x = orders(f, *({"session": s, "ip": ip, "device": d, "ts_ms": T0 + 2 * MIN}
                    for s, ip, d in ((1, 10, 20), (2, 11, 20), (3, 12, 99), (4, 13, 0))))
    assert x["usual_device"].tolist() == [0, 1, 0, 0]
    assert x["new_country"].tolist() == [0, 1, 0, 0]
    # an account with no login at all has no usual device either
    assert orders(f, {"account": 7, "session": 0})["usual_device"].tolist() == [0]


def test_a_replayed_session_from_an_ip_the_account_never_used_weighs_more_than_a_known_one():
    f = AccountFeatures()
    auth(f, {"session": 1, "ip": 10}, {"session": 2, "ip": 11, "ts_ms": T0 + MIN})  # home, carrier
    x = orders(f, {"session": 2, "ip": 10, "ts_ms": T0 + 2 * MIN},   # its phone back on home Wi-Fi
               {"session": 2, "ip": 77, "ts_ms": T0 + 2 * MIN},      # a proxy replaying the cookie
               {"session": 2, "ip": 77, "ts_ms": T0 + 3 * MIN},      # asking did not make it usual
               {"session": 2, "ip": 77, "device": 21, "ts_ms": T0 + 3 * MIN})  # another device
    assert x["session_mismatch"].tolist() == [0.5, 0.75, 0.75, 1.0]
