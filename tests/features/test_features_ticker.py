"""What the ticker features mean, on hand-made stories."""

import numpy as np
import pytest

from tradeguard.features import (TICKER_FEATURES, FlowBatch,
                                 TickerFeatures, TickerParams, TradeBatch)

pytestmark = pytest.mark.quick  # pure and fast: `python -m pytest -m quick`

T0 = 1_700_000_000_000
MIN = 60_000


def trades(f, prices, start_ms=T0, every_ms=MIN, qty=100.0, ticker=0):
    n = len(prices)
    f.learn_trades(TradeBatch.from_columns(ticker=[ticker] * n, price=prices, qty=[qty] * n,
                                           ts_ms=[start_ms + k * every_ms for k in range(n)]))


def flow(f, *events):
    rows = [{"ticker": 0, "account": 0, "is_buy": True, "notional": 1e5, "account_risk": 0.0,
             "ts_ms": T0, **e} for e in events]
    x = f.transform_flow(FlowBatch.from_columns(**{k: [r[k] for r in rows] for k in rows[0]}))
    return {name: x[:, j] for j, name in enumerate(TICKER_FEATURES)}


def test_adv_is_the_usual_daily_traded_value():
    f = TickerFeatures()
    assert np.isnan(f.adv_value(0)) and np.isnan(f.last_price(3))
    # 100 yen * 100 shares every minute for 30 days of event time: 14.4M yen a day.
    trades(f, [100.0] * (30 * 1440))
    assert f.adv_value(0) == pytest.approx(14.4e6, rel=0.01)
    assert f.last_price(0) == 100.0


def test_volume_against_adv_spikes_with_a_buying_rush():
    f = TickerFeatures()
    trades(f, [100.0] * (10 * 1440))
    end = T0 + 10 * 1440 * MIN
    quiet = flow(f, {"ts_ms": end, "notional": 0.0})["volume_x_adv"][0]
    rush = flow(f, *({"account": k, "notional": 5e6, "ts_ms": end + k * 1000} for k in range(10)))
    assert quiet < 5 and rush["volume_x_adv"][-1] > 50 * quiet
    assert flow(f, {"ticker": 7})["volume_x_adv"][0] == 0.0  # never traded: no ADV, no ratio


def test_price_move_is_measured_in_its_own_volatility():
    f = TickerFeatures()
    rng = np.random.default_rng(0)
    trades(f, list(100.0 * np.exp(np.cumsum(rng.normal(0, 0.001, 200)))))
    calm = flow(f, {"ts_ms": T0 + 200 * MIN})["price_move_sigma"][0]
    trades(f, [f.last_price(0) * 1.2], start_ms=T0 + 201 * MIN)
    jump = flow(f, {"ts_ms": T0 + 202 * MIN})["price_move_sigma"][0]
    assert abs(calm) < 4 and jump > 20


def test_buyers_in_the_window_distinct_risky_and_their_share():
    f = TickerFeatures()
    x = flow(f, {"account": 1, "account_risk": 0.9, "notional": 3e5},
             {"account": 1, "account_risk": 0.1, "notional": 1e5, "ts_ms": T0 + 1000},  # stays risky
             {"account": 2, "notional": 1e5, "ts_ms": T0 + 2000},
             {"account": 3, "is_buy": False, "notional": 3e5, "ts_ms": T0 + 3000},
             {"account": 4, "ts_ms": T0 + 6 * MIN, "notional": 1e5})
    assert x["distinct_buyers_window"].tolist() == [1, 1, 2, 2, 1]
    assert x["risky_buyers_window"].tolist() == [1, 1, 1, 1, 0]
    assert x["risky_buy_share"].tolist() == pytest.approx([1.0, 0.75, 0.6, 0.6, 0.0])
    assert x["buy_sell_imbalance"].tolist() == pytest.approx([1.0, 1.0, 1.0, 0.25, 1.0])


def test_distinct_buyers_saturate_at_the_ring_size():
    f = TickerFeatures(TickerParams(buyer_ring=8))
    x = flow(f, *({"account": k, "ts_ms": T0 + k} for k in range(20)))
    assert x["distinct_buyers_window"].max() == 8


def test_bad_trades_name_their_column():
    with pytest.raises(ValueError, match="TradeBatch.price: row 1"):
        trades(TickerFeatures(), [100.0, -1.0])


def test_profiles_read_in_one_call_are_each_ticker_s_adv_and_last_price():
    """``profiles`` (one kernel call) against ``adv_value`` and ``last_price`` one by one,
    on tickers traded at random, one never traded and ids the state does not hold."""
    rng = np.random.default_rng(3)
    f = TickerFeatures()
    n = 400
    f.learn_trades(TradeBatch.from_columns(
        ticker=rng.choice([0, 1, 2, 4, 6], n), price=rng.uniform(1, 5000, n),
        qty=rng.integers(1, 10_000, n).astype(float),
        ts_ms=np.sort(T0 + rng.integers(0, 40 * 1440 * MIN, n))))
    ids = [0, 1, 2, 3, 4, 5, 6, 7, 99, -1]  # 3 and 5 never traded; 7, 99 and -1 not held
    adv, last = f.profiles(ids)
    np.testing.assert_array_equal(adv, [f.adv_value(i) for i in ids])
    np.testing.assert_array_equal(last, [f.last_price(i) for i in ids])
    assert np.isfinite(adv[[0, 1, 2, 4, 6]]).all() and np.isnan(adv[[3, 5, 7, 8, 9]]).all()
