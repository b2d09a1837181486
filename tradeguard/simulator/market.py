"""The market: tickers in liquidity tiers, a price process, and the prints on ``market.trades``.

A ticker's price is a random walk (GBM-like, its tier's daily volatility)
times a *price impact* that our customers' orders push (square-root law in
the order's share of normal daily value) and that decays with the tier's
half-life; so a pump inflates the price and a dump deflates it. Background
prints from the rest of the market arrive with an intraday U-shaped intensity.

>>> intraday_profile(0.0) > intraday_profile(0.5) < intraday_profile(1.0)
True
>>> round_to_tick(1234.56), round_to_tick(57.04)
(1235.0, 57.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np

from tradeguard.simulator.scenario import TierConfig

if TYPE_CHECKING:
    from tradeguard.simulator.world import VenueHours

__all__ = ["TRADING_DAY_S", "Ticker", "TickerState", "build_tickers", "intraday_profile",
           "reference_records", "round_to_tick"]

#: Trading seconds in a TSE day (9:00-11:30, 12:30-15:30), as the engine's TickerParams assumes.
TRADING_DAY_S = 19_800.0
_U_SHAPE = 2.0  # open and close trade (1 + _U_SHAPE) times the midday rate


@dataclass(frozen=True)
class Ticker:
    symbol: str
    tier: str
    market: str
    venue: str
    lot: int
    open_price: float
    adv_value: float  # normal daily traded value, yen
    daily_vol: float
    print_interval_s: float
    impact: float
    impact_half_life_s: float
    price_limit: float  # daily band around the previous close (TSE style), 0: none
    listed_today: bool = False  # a new listing: no history before the session, nobody holds it

    @property
    def adv_shares(self) -> float:
        return self.adv_value / self.open_price


@dataclass
class TickerState:
    """A ticker's price as the walk goes: random-walk part, impact part, last print."""

    ticker: Ticker
    rng: np.random.Generator
    log_base: float = field(init=False)
    impact: float = 0.0
    base_ts: int = 0  # event time the walk starts from
    impact_ts: int = 0
    volume_x: float = 1.0  # market-wide volume multiplier (news)
    volume_x_until: int = 0
    hours: "VenueHours | None" = None  # its venue's own hours; None: it trades all session
    listed_from: int = 0  # event time it starts trading (a new listing: the session's open)
    mark: float = field(init=False)  # the last price computed: what a position is valued at
    reference: float = field(init=False)  # previous close: the centre of the daily price band

    def __post_init__(self) -> None:
        self.log_base = math.log(self.ticker.open_price)
        self.mark = self.reference = self.ticker.open_price
        self.impact_ts = self.base_ts

    def is_open(self, ts: int) -> bool:
        return ts >= self.listed_from and (self.hours is None or self.hours.is_open(ts))

    def price(self, ts: int) -> float:
        """Mark price at ``ts``: the base walk advanced to ts, impact decayed to ts."""
        t = self.ticker
        dt = max(ts - self.base_ts, 0) / 1000.0
        if dt > 0:
            step = t.daily_vol * math.sqrt(dt / TRADING_DAY_S)
            self.log_base += step * self.rng.standard_normal()
            self.base_ts = ts
        self._decay(ts)
        self._clamp()
        self.mark = round_to_tick(math.exp(self.log_base + self.impact))
        return self.mark

    def close(self, ts: int) -> float:
        """A day's closing price, which centres the next day's band."""
        self.reference = float("nan")  # no band while moving to the close
        self.reference = self.price(ts)
        return self.reference

    def push(self, side: str, notional: float, ts: int) -> None:
        """An executed order moves the price: +sqrt(notional / ADV value) * impact for a buy."""
        self._decay(ts)
        move = self.ticker.impact * math.sqrt(max(notional, 0.0) / self.ticker.adv_value)
        self.impact += move if side == "buy" else -move
        self._clamp()

    def _clamp(self) -> None:
        """Keep the price inside the daily band: a pump stops at limit-up, a dump at limit-down."""
        limit = self.ticker.price_limit
        if limit and self.reference == self.reference:  # NaN: no band right now
            lo, hi = math.log(self.reference * (1 - min(limit, 0.99))), math.log(
                self.reference * (1 + limit))
            self.log_base = min(max(self.log_base, lo), hi)
            self.impact = min(max(self.log_base + self.impact, lo), hi) - self.log_base

    def _decay(self, ts: int) -> None:
        if ts > self.impact_ts:
            self.impact *= 0.5 ** ((ts - self.impact_ts) / 1000.0 / self.ticker.impact_half_life_s)
            self.impact_ts = ts

    def next_print_gap_s(self, day_fraction: float, ts: int) -> float:
        """Seconds to the next background print (Poisson, intensity follows the U shape)."""
        rate = intraday_profile(day_fraction) * self._volume_x(ts) / self.ticker.print_interval_s
        return float(self.rng.exponential(1.0 / rate))

    def print_qty(self, ts: int) -> int:
        """Shares in one background print: the volume of one print interval, lognormal noise."""
        t = self.ticker
        mean = t.adv_shares * t.print_interval_s / TRADING_DAY_S * self._volume_x(ts)
        qty = mean * math.exp(self.rng.normal(-0.18, 0.6))
        return max(t.lot, int(qty // t.lot) * t.lot)

    def _volume_x(self, ts: int) -> float:
        return self.volume_x if ts < self.volume_x_until else 1.0


def intraday_profile(day_fraction: float) -> float:
    """Relative trading intensity at a point of the trading day (mean 1 over the day)."""
    x = 2.0 * min(max(day_fraction, 0.0), 1.0) - 1.0
    return (1.0 + _U_SHAPE * x * x) / (1.0 + _U_SHAPE / 3.0)


def round_to_tick(price: float) -> float:
    """Round a yen price to a plausible tick (0.1 below 100 yen, 1 below 5,000, else 5)."""
    tick = 0.1 if price < 100 else 1.0 if price < 5_000 else 5.0
    return round(max(round(price / tick) * tick, tick), 1)


def build_tickers(tiers: dict[str, TierConfig], rng: np.random.Generator) -> list[Ticker]:
    """Every tier's tickers, with unique symbols, prices and normal volumes."""
    used: set[str] = set()
    out = []
    for name in sorted(tiers):
        cfg = tiers[name]
        for k in range(cfg.count):
            symbol = _symbol(cfg, rng, used)
            lo, hi = cfg.price_range
            price = round_to_tick(float(math.exp(rng.uniform(math.log(lo), math.log(hi)))))
            adv = float(cfg.adv_value * math.exp(rng.normal(0.0, 0.5)))
            out.append(Ticker(symbol, name, cfg.market, cfg.venue, cfg.lot, price, adv,
                              cfg.daily_vol, cfg.print_interval_s, cfg.impact,
                              cfg.impact_half_life_s, cfg.price_limit,
                              listed_today=k < cfg.new_listings))
    return out


def reference_records(tickers: list[Ticker], session_date: date, ts: int,
                      rng: np.random.Generator) -> list[dict]:
    """What a broker's instrument master says about each ticker, as of event time ``ts``.

    Shares outstanding follow from the normal daily value at a daily turnover of
    about 0.5% of the company (lognormal, sigma 0.6). A ticker listed today has a
    listing date of the session's day and no normal daily value yet (null).
    """
    out = []
    for t in tickers:
        turnover = 0.005 * math.exp(rng.normal(0.0, 0.6))
        shares = max(1_000, round(t.adv_value / turnover / t.open_price, -3))
        listed = session_date - timedelta(days=int(rng.integers(365, 40 * 365)))
        out.append({
            "ticker": t.symbol, "market": t.market, "venue": t.venue, "currency": "JPY",
            "lot": t.lot, "listing_date": (session_date if t.listed_today else listed).isoformat(),
            "shares_outstanding": int(shares), "reference_price": t.open_price,
            "normal_daily_value": None if t.listed_today else round(t.adv_value, 2), "ts": ts})
    return out


def _symbol(cfg: TierConfig, rng: np.random.Generator, used: set[str]) -> str:
    """A fresh code: 4 letters on US venues, a number from code_range elsewhere."""
    lo, hi = cfg.code_range
    for _ in range(10_000):
        if cfg.market == "US":
            code = "".join(chr(65 + int(c)) for c in rng.integers(0, 26, 4))
        else:
            code = str(int(rng.integers(lo, hi + 1))).zfill(len(str(hi)))
        symbol = code if cfg.market == "JP" else f"{cfg.venue}:{code}"
        if symbol not in used:
            used.add(symbol)
            return symbol
    raise ValueError(f"tier code_range {cfg.code_range} is exhausted")  # pragma: no cover
