"""Per-ticker pump signals: volume against normal, price against its own volatility,
and who is buying right now.

Short windows are rings of time buckets (exact to one bucket); "who is
buying" is a small ring of the most recent distinct buyers, so its counts
saturate at `buyer_ring` accounts — by then a thin ticker is plainly under attack.
"""

from __future__ import annotations

import math
from collections import namedtuple
from dataclasses import dataclass

import numba
import numpy as np

from . import _snapshot
from .batches import FlowBatch, TradeBatch, require
from .ids import DenseIds, grown
from .primitives import (NEVER_MS, bucket_add, bucket_sum, decay, observed_window_ms, ring_count,
                         ring_touch)

__all__ = ["TICKER_FEATURES", "TickerParams", "TickerFeatures"]

TICKER_FEATURES: tuple[str, ...] = (
    "volume_x_adv", "price_move_sigma", "distinct_buyers_window", "risky_buyers_window",
    "risky_buy_share", "buy_sell_imbalance",
)

# Columns of the window buckets.
TRADED, FLOW_BUY, FLOW_SELL, RISKY_BUY = 0, 1, 2, 3
_DAY_MS = 86_400_000.0


@dataclass(frozen=True)
class TickerParams:
    """Windows and half-lives of TickerFeatures (times in seconds).

    ADV is a decayed sum of traded value per day of event time; the window's
    "normal" share of it is ADV * window_s / trading_seconds_per_day, because
    all of a day's value trades in the session (TSE: 9:00-11:30, 12:30-15:30).
    """
    window_s: float = 300.0              # "right now" for volume, buyers, imbalance
    bucket_s: float = 30.0               # window resolution; window_s / bucket_s buckets
    adv_half_life_s: float = 10 * 86400.0
    trading_seconds_per_day: float = 19_800.0
    anchor_half_life_s: float = 600.0    # the price a move is measured from
    volatility_alpha: float = 0.05       # EWMA weight of each trade's squared move (~20 trades)
    min_trades_for_sigma: int = 20       # price_move_sigma is 0 until the volatility has this many trades
    risky_threshold: float = 0.5         # account_risk at or above this makes a buyer "risky"
    buyer_ring: int = 32                 # distinct recent buyers remembered per ticker

    def __post_init__(self) -> None:
        if not (self.bucket_s > 0 and self.window_s >= self.bucket_s
                and float(self.window_s / self.bucket_s).is_integer()):
            raise ValueError(f"TickerParams.window_s: {self.window_s} must be a whole number of "
                             f"bucket_s ({self.bucket_s})")
        if not 0 < self.volatility_alpha <= 1:
            raise ValueError(f"TickerParams.volatility_alpha: {self.volatility_alpha} not in (0, 1]")
        if self.buyer_ring < 1:
            raise ValueError(f"TickerParams.buyer_ring: {self.buyer_ring} must be >= 1")

    @property
    def buckets(self) -> int:
        return int(self.window_s / self.bucket_s)

    def kernel(self) -> "_KernelParams":
        """The same parameters in the units the kernels use (ms, time constants)."""
        tau = lambda half_life_s: half_life_s * 1000.0 / math.log(2.0)  # noqa: E731
        return _KernelParams(
            int(self.window_s * 1000), int(self.bucket_s * 1000), tau(self.adv_half_life_s),
            self.window_s / self.trading_seconds_per_day, tau(self.anchor_half_life_s),
            float(self.volatility_alpha), int(self.min_trades_for_sigma), float(self.risky_threshold))


_KernelParams = namedtuple("_KernelParams", "window_ms bucket_ms tau_adv_ms window_share_of_day "
                           "tau_anchor_ms volatility_alpha min_trades risky_threshold")

TICKER_STATE = np.dtype([
    ("first_trade_ms", np.int64), ("last_trade_ms", np.int64), ("trades", np.int64),
    ("traded_value", np.float64),   # decayed sum of price * qty, as of last_trade_ms
    ("last_price", np.float64), ("anchor_log_price", np.float64),
    ("move_variance", np.float64), ("move_sigma", np.float64),
], align=True)


def _empty_ticker() -> np.ndarray:
    row = np.zeros((), TICKER_STATE)
    row["first_trade_ms"] = row["last_trade_ms"] = NEVER_MS
    row["last_price"] = np.nan
    return row


@numba.njit(cache=True)
def _adv(s, tau_adv_ms):
    """One ticker's decayed traded value per day, NaN before its first trade."""
    if s.trades == 0:
        return np.nan
    return s.traded_value * _DAY_MS / observed_window_ms(s.last_trade_ms - s.first_trade_ms, tau_adv_ms)


@numba.njit(cache=True)
def _profile_rows(tickers, idx, tau_adv_ms, adv, last_price):
    """``_adv`` and the last price of each ticker id in ``idx``; NaN for an id not held."""
    for k in range(idx.shape[0]):
        i = idx[k]
        if 0 <= i < tickers.shape[0]:
            adv[k] = _adv(tickers[i], tau_adv_ms)
            last_price[k] = tickers[i].last_price
        else:
            adv[k] = last_price[k] = np.nan


@numba.njit(cache=True)
def _learn_trades(tickers, epochs, sums, ticker, price, qty, ts_ms, p):
    """Walk trades in order: window value, ADV, and the price move against its volatility."""
    for i in range(ticker.shape[0]):
        s = tickers[ticker[i]]
        t = ts_ms[i]
        value = price[i] * qty[i]
        bucket_add(epochs[ticker[i]], sums[ticker[i]], t // p.bucket_ms, TRADED, value)
        log_price = np.log(price[i])
        if s.trades == 0:
            s.first_trade_ms = t
            s.anchor_log_price = log_price
        dt = t - s.last_trade_ms
        s.traded_value = s.traded_value * decay(dt, p.tau_adv_ms) + value
        move = log_price - s.anchor_log_price
        # Sigma uses the variance before this move, so a jump is not diluted by itself.
        s.move_sigma = 0.0
        if s.trades >= p.min_trades and s.move_variance > 0:
            s.move_sigma = move / np.sqrt(s.move_variance)
        if s.trades > 0:
            s.move_variance += p.volatility_alpha * (move * move - s.move_variance)
            keep = decay(dt, p.tau_anchor_ms)
            s.anchor_log_price = keep * s.anchor_log_price + (1.0 - keep) * log_price
        s.trades += 1
        s.last_price = price[i]
        s.last_trade_ms = max(s.last_trade_ms, t)


@numba.njit(cache=True)
def _transform_flow(tickers, epochs, sums, ring_account, ring_ms, ring_risk, ticker, account,
                    is_buy, notional, account_risk, ts_ms, p, out):
    """Walk flow records in order: add each to its ticker's window, then write its features."""
    for i in range(ticker.shape[0]):
        k = ticker[i]
        t = ts_ms[i]
        epoch = t // p.bucket_ms
        since = t - p.window_ms + 1
        risky = account_risk[i] >= p.risky_threshold
        if is_buy[i]:
            bucket_add(epochs[k], sums[k], epoch, FLOW_BUY, notional[i])
            if risky:
                bucket_add(epochs[k], sums[k], epoch, RISKY_BUY, notional[i])
            slot, previous_ms = ring_touch(ring_account[k], ring_ms[k], account[i], t)
            # A buyer stays as risky as it was at its riskiest within the window.
            if previous_ms >= since:
                ring_risk[k, slot] = max(ring_risk[k, slot], account_risk[i])
            else:
                ring_risk[k, slot] = account_risk[i]
        else:
            bucket_add(epochs[k], sums[k], epoch, FLOW_SELL, notional[i])

        traded = bucket_sum(epochs[k], sums[k], epoch, TRADED)
        buys = bucket_sum(epochs[k], sums[k], epoch, FLOW_BUY)
        sells = bucket_sum(epochs[k], sums[k], epoch, FLOW_SELL)
        risky_buys = bucket_sum(epochs[k], sums[k], epoch, RISKY_BUY)
        normal = _adv(tickers[k], p.tau_adv_ms) * p.window_share_of_day
        risky_buyers = 0
        for j in range(ring_ms.shape[1]):
            if ring_ms[k, j] >= since and ring_risk[k, j] >= p.risky_threshold:
                risky_buyers += 1

        row = out[i]  # columns in TICKER_FEATURES order
        row[0] = (traded + buys) / normal if normal > 0 else 0.0
        row[1] = tickers[k].move_sigma
        row[2] = ring_count(ring_ms[k], since)
        row[3] = risky_buyers
        row[4] = risky_buys / buys if buys > 0 else 0.0
        row[5] = (buys - sells) / (buys + sells) if buys + sells > 0 else 0.0


@numba.njit(cache=True)
def _ticker_events(tickers, epochs, sums, ring_account, ring_ms, ring_risk, run_is_flow,
                   run_length, t_ticker, t_price, t_qty, t_ts_ms, ticker, account, is_buy,
                   notional, account_risk, ts_ms, p, out):
    """Walk trades and order flow merged in event time: runs of one kind, each in its own order."""
    a, f = 0, 0
    for r in range(run_is_flow.shape[0]):
        n = run_length[r]
        if run_is_flow[r]:
            _transform_flow(tickers, epochs, sums, ring_account, ring_ms, ring_risk,
                            ticker[f:f + n], account[f:f + n], is_buy[f:f + n],
                            notional[f:f + n], account_risk[f:f + n], ts_ms[f:f + n], p,
                            out[f:f + n])
            f += n
        else:
            _learn_trades(tickers, epochs, sums, t_ticker[a:a + n], t_price[a:a + n],
                          t_qty[a:a + n], t_ts_ms[a:a + n], p)
            a += n


class TickerFeatures:
    """Online pump features per ticker: `learn_trades` from market data, `transform_flow` from orders.

    Tickers are dense ids (``self.ids`` maps ticker keys to them). Unknown ADV
    makes volume_x_adv 0: with no trading history there is no "normal".

    >>> from tradeguard.features.batches import TradeBatch, FlowBatch
    >>> f = TickerFeatures()
    >>> f.learn_trades(TradeBatch.from_columns(ticker=[0], price=[100.0], qty=[10], ts_ms=[0]))
    >>> f.last_price(0), f.last_price(5)
    (100.0, nan)
    >>> x = f.transform_flow(FlowBatch.from_columns(ticker=[0, 0, 0], account=[1, 2, 1],
    ...     is_buy=[True, True, False], notional=[300.0, 100.0, 100.0], account_risk=[0.9, 0.1, 0.9],
    ...     ts_ms=[1000, 2000, 3000]))
    >>> dict(zip(TICKER_FEATURES, x[-1].tolist()))["distinct_buyers_window"], float(x[-1, 4]), float(x[-1, 5])
    (2.0, 0.75, 0.6)
    """

    def __init__(self, params: TickerParams = TickerParams(), capacity: int = 256) -> None:
        self.params = params
        self.ids = DenseIds()
        self._kernel_params = params.kernel()
        self._tickers = np.full(capacity, _empty_ticker())
        self._epochs = np.full((capacity, params.buckets), NEVER_MS, np.int64)
        self._sums = np.zeros((capacity, params.buckets, 4), np.float64)
        self._ring_account = np.full((capacity, params.buyer_ring), -1, np.int64)
        self._ring_ms = np.full((capacity, params.buyer_ring), NEVER_MS, np.int64)
        self._ring_risk = np.zeros((capacity, params.buyer_ring), np.float64)

    @property
    def bytes_per_ticker(self) -> int:
        return sum(a.nbytes // a.shape[0] for a in self._arrays().values())

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"tickers": self._tickers, "epochs": self._epochs, "sums": self._sums,
                "ring_account": self._ring_account, "ring_ms": self._ring_ms,
                "ring_risk": self._ring_risk}

    def _reserve(self, batch) -> None:
        """Check the batch's ticker ids and grow the per-ticker arrays to hold them."""
        if len(batch) == 0:
            return
        require(batch, "ticker", batch.ticker >= 0, "ticker ids must be >= 0")
        needed = int(batch.ticker.max()) + 1
        self._tickers = grown(self._tickers, needed, _empty_ticker())
        self._epochs = grown(self._epochs, needed, NEVER_MS)
        self._sums = grown(self._sums, needed, 0.0)
        self._ring_account = grown(self._ring_account, needed, -1)
        self._ring_ms = grown(self._ring_ms, needed, NEVER_MS)
        self._ring_risk = grown(self._ring_risk, needed, 0.0)

    def _row(self, ticker_idx: int):
        return self._tickers[ticker_idx] if 0 <= ticker_idx < len(self._tickers) else None

    def adv_value(self, ticker_idx: int) -> float:
        """The ticker's usual daily traded value in yen, NaN if it has never traded."""
        row = self._row(ticker_idx)
        return float("nan") if row is None else float(_adv(row, self._kernel_params.tau_adv_ms))

    def last_price(self, ticker_idx: int) -> float:
        """The ticker's last trade price, NaN if it has never traded."""
        row = self._row(ticker_idx)
        return float("nan") if row is None else float(row["last_price"])

    def profiles(self, ticker_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``adv_value`` and ``last_price`` of many tickers in one kernel call: a profile
        period closes every minute on every partition, tens of tickers each."""
        idx = np.ascontiguousarray(ticker_idx, dtype=np.int64)
        adv, last_price = np.empty(len(idx)), np.empty(len(idx))
        _profile_rows(self._tickers, idx, self._kernel_params.tau_adv_ms, adv, last_price)
        return adv, last_price

    def learn_trades(self, batch: TradeBatch) -> None:
        """Learn market trades; prices must be positive and finite."""
        self._reserve(batch)
        require(batch, "price", np.isfinite(batch.price) & (batch.price > 0), "prices must be > 0")
        require(batch, "qty", np.isfinite(batch.qty) & (batch.qty >= 0), "quantities must be >= 0")
        _learn_trades(self._tickers, self._epochs, self._sums, batch.ticker, batch.price, batch.qty,
                      batch.ts_ms, self._kernel_params)

    def transform_flow(self, batch: FlowBatch) -> np.ndarray:
        """Features of each flow record (n, len(TICKER_FEATURES)), each including itself."""
        self._reserve(batch)
        require(batch, "notional", np.isfinite(batch.notional) & (batch.notional >= 0),
                "notional must be >= 0")
        out = np.empty((len(batch), len(TICKER_FEATURES)), np.float64)
        _transform_flow(self._tickers, self._epochs, self._sums, self._ring_account, self._ring_ms,
                        self._ring_risk, batch.ticker, batch.account, batch.is_buy, batch.notional,
                        batch.account_risk, batch.ts_ms, self._kernel_params, out)
        return out

    def process(self, trades: TradeBatch, flows: FlowBatch, runs: np.ndarray) -> np.ndarray:
        """Trades and flow merged in event time, in one kernel call; the flow's features.

        ``runs`` is an (r, 2) int array of (is_flow, length), as in
        ``AccountFeatures.process``: ``learn_trades`` and ``transform_flow`` run by run.
        """
        runs = np.ascontiguousarray(runs, dtype=np.int64).reshape(-1, 2)
        is_flow, length = runs[:, 0], runs[:, 1]
        if int(length[is_flow == 1].sum()) != len(flows) or \
                int(length[is_flow == 0].sum()) != len(trades):
            raise ValueError(f"runs cover {int(length[is_flow == 0].sum())} trades and "
                             f"{int(length[is_flow == 1].sum())} flows; the batches have "
                             f"{len(trades)} and {len(flows)}")
        self._reserve(trades)
        self._reserve(flows)
        require(trades, "price", np.isfinite(trades.price) & (trades.price > 0),
                "prices must be > 0")
        require(trades, "qty", np.isfinite(trades.qty) & (trades.qty >= 0),
                "quantities must be >= 0")
        require(flows, "notional", np.isfinite(flows.notional) & (flows.notional >= 0),
                "notional must be >= 0")
        out = np.empty((len(flows), len(TICKER_FEATURES)), np.float64)
        _ticker_events(self._tickers, self._epochs, self._sums, self._ring_account, self._ring_ms,
                       self._ring_risk, is_flow.copy(), length.copy(), trades.ticker, trades.price,
                       trades.qty, trades.ts_ms, flows.ticker, flows.account, flows.is_buy,
                       flows.notional, flows.account_risk, flows.ts_ms, self._kernel_params, out)
        return out

    def to_bytes(self) -> bytes:
        return _snapshot.pack(self.params, self._arrays(), self.ids)

    @classmethod
    def from_bytes(cls, data: bytes) -> "TickerFeatures":
        params, arrays, ids = _snapshot.unpack(data, TickerParams)
        restored = cls(params, capacity=1)
        for name, array in arrays.items():
            setattr(restored, "_" + name, array)
        restored.ids = ids
        return restored
