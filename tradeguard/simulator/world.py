"""The event-time walk: every actor's plan runs here, in order, against one market and one book.

Actors schedule callbacks (``world.at(ts, fn)``); the walk pops them in
(ts, scheduling order) and each callback emits records and may schedule more.
Orders are resolved when they happen, against the account's book at that
moment (a liquidation sells what is held *then*), are assumed to fill at the
mark, and print on ``market.trades`` a few hundred milliseconds later.
"""

from __future__ import annotations

import bisect
import heapq
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable
from zoneinfo import ZoneInfo

import numpy as np

from streams.topics import AUTH_EVENTS, MARKET_TRADES, ORDERS
from tradeguard.simulator.accounts import Account
from tradeguard.simulator.infra import Context
from tradeguard.simulator.market import TRADING_DAY_S, TickerState, round_to_tick
from tradeguard.simulator.scenario import interval_minutes

__all__ = ["Clock", "Login", "OrderSpec", "VenueHours", "World"]


@dataclass(frozen=True)
class Clock:
    """The session's wall clock and its trading clock (wall time less the lunch break).

    >>> c = Clock(open_ms=0, duration_s=100.0, lunch_start_s=40.0, lunch_s=20.0)
    >>> c.trading_s, c.wall_ms(50.0), c.close_ms
    (80.0, 70000, 100000)
    """

    open_ms: int
    duration_s: float
    lunch_start_s: float = 0.0
    lunch_s: float = 0.0

    @property
    def close_ms(self) -> int:
        return self.open_ms + int(self.duration_s * 1000)

    @property
    def trading_s(self) -> float:
        return self.duration_s - self.lunch_s

    def wall_ms(self, trading_offset_s: float) -> int:
        """Event time of a trading-clock offset (offsets past the lunch start skip the break)."""
        skip = self.lunch_s if self.lunch_s and trading_offset_s >= self.lunch_start_s else 0.0
        return self.open_ms + int((trading_offset_s + skip) * 1000)

    def trading_offset_s(self, ts: int) -> float:
        wall = (ts - self.open_ms) / 1000.0
        if self.lunch_s and wall >= self.lunch_start_s:
            wall = max(wall - self.lunch_s, self.lunch_start_s)
        return wall

    def day_fraction(self, ts: int) -> float:
        return self.trading_offset_s(ts) / TRADING_DAY_S


@dataclass(frozen=True)
class VenueHours:
    """A venue's own trading hours as event-time intervals, and a trading clock over them.

    Each interval is ``(open_ms, close_ms, before_s, day_s)``: the seconds of its
    local day traded before it, and that day's trading seconds, so a point in time
    knows its fraction of the venue's day (for the intraday U shape). Every
    calendar day trades (the simulator has no weekends or holidays).

    >>> ny = datetime(2025, 4, 16, 22, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    >>> lo = int(ny.timestamp() * 1000)
    >>> h = VenueHours.build("America/New_York", ["09:30-16:00"], lo, lo + 86_400_000)
    >>> [datetime.fromtimestamp(o / 1000, ZoneInfo("Asia/Tokyo")).strftime("%H:%M")
    ...  for o, *_ in h.intervals][:2]  # daylight saving time: 22:30-05:00 in Tokyo
    ['22:30', '22:30']
    >>> h.is_open(lo), h.is_open(lo + 3_600_000), h.advance(lo, 60.0) - lo
    (False, True, 1860000)
    """

    intervals: tuple[tuple[int, int, float, float], ...]

    @classmethod
    def build(cls, timezone: str, hours: list[str], lo_ms: int, hi_ms: int) -> "VenueHours":
        """The venue's intervals on every local day that overlaps [lo_ms, hi_ms]."""
        tz = ZoneInfo(timezone)
        spans = [interval_minutes(h) for h in hours]
        day_s = 60.0 * sum(b - a for a, b in spans)
        first = datetime.fromtimestamp(lo_ms / 1000, tz).date() - timedelta(days=1)
        last = datetime.fromtimestamp(hi_ms / 1000, tz).date() + timedelta(days=1)
        out, day = [], first
        while day <= last:
            midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
            before = 0.0
            for a, b in spans:
                start, end = (midnight + timedelta(minutes=m) for m in (a, b))
                out.append((_ms(start), _ms(end), before, day_s))
                before += 60.0 * (b - a)
            day += timedelta(days=1)
        return cls(tuple(out))

    def _index(self, ts: int) -> int:
        """The interval open at ts, or else the next one to open (len(intervals) if none)."""
        i = bisect.bisect_right(self.intervals, (ts, float("inf"))) - 1
        return i if i >= 0 and ts < self.intervals[i][1] else i + 1

    def is_open(self, ts: int) -> bool:
        i = self._index(ts)
        return i < len(self.intervals) and self.intervals[i][0] <= ts

    def advance(self, ts: int, seconds: float) -> int | None:
        """The event time ``seconds`` of trading after ts, skipping closed hours."""
        left, i = seconds * 1000.0, self._index(ts)
        while i < len(self.intervals):
            start, end = max(self.intervals[i][0], ts), self.intervals[i][1]
            if start + left < end:
                return int(start + left)
            left -= end - start
            i += 1
        return None

    def day_fraction(self, ts: int) -> float:
        """How far into the venue's trading day ts is (0 at its open, 1 at its close)."""
        i = self._index(ts)
        if i >= len(self.intervals):
            return 1.0
        start, _, before, day_s = self.intervals[i]
        return (before + max(ts - start, 0) / 1000.0) / day_s

    def closes_before(self, ts: int, n: int) -> list[int]:
        """The last n daily closes (end of a day's last interval) at or before ts, oldest first."""
        ends = [end for start, end, before, day_s in self.intervals
                if end <= ts and before + (end - start) / 1000.0 >= day_s]
        return ends[-n:]


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


@dataclass(frozen=True)
class Login:
    """An open session: its id and the context that logged in."""

    session_id: str
    context: Context


@dataclass(frozen=True)
class OrderSpec:
    """What an actor wants; sizes resolve against the book when the order is placed.

    Exactly one of ``notional`` (yen, buys), ``qty`` or ``share`` (of the
    position, sells) is set. ``context`` is where the order really comes from:
    the login's context, or an attacker replaying its session cookie.
    """

    account: Account
    ticker: str
    side: str
    login: Login
    notional: float | None = None
    qty: int | None = None
    share: float | None = None
    margin: bool = False
    order_type: str = "limit"
    premium: float = 0.002  # how far a limit price sits beyond the mark
    context: Context | None = None
    tag: tuple | None = None  # ground-truth label, never sent
    visible: bool = True  # False: placed at another broker, only its print reaches the tape


class World:
    def __init__(self, tickers: dict[str, TickerState], clock: Clock,
                 rng: np.random.Generator) -> None:
        self.tickers = tickers
        self.clock = clock
        self.rng = rng
        self.records: list[tuple[str, dict[str, Any]]] = []
        self.tagged: list[tuple[tuple, dict[str, Any], float]] = []  # (tag, record, fill price)
        self._heap: list[tuple[int, int, Callable[[int], None]]] = []
        self._seq = 0
        self._orders = 0

    def at(self, ts: int, fn: Callable[[int], None]) -> None:
        """Run ``fn(ts)`` at event time ``ts`` (after whatever is already due then)."""
        heapq.heappush(self._heap, (int(ts), self._seq, fn))
        self._seq += 1

    def run(self) -> None:
        while self._heap:
            ts, _, fn = heapq.heappop(self._heap)
            fn(ts)

    # -- what actors emit -------------------------------------------------------------------

    def auth(self, ts: int, account: Account, event: str, context: Context,
             session_id: str | None) -> None:
        self.records.append((AUTH_EVENTS, {
            "account_id": account.account_id, "event": event, "session_id": session_id,
            "ip": context.ip, "device_id": context.device_id, "user_agent": context.user_agent,
            "country": context.country, "asn": context.asn, "ts": ts}))

    def trade(self, ts: int, ticker: str, price: float, qty: int) -> None:
        self.records.append((MARKET_TRADES, {"ticker": ticker, "price": price, "qty": qty,
                                               "ts": ts}))

    def order(self, ts: int, spec: OrderSpec) -> dict[str, Any] | None:
        """Place, fill and print one order; its record, or None when the book cannot back it.

        An order placed at another broker (``visible=False``) fills and prints
        but sends no record; its record has order_id None.
        """
        state = self.tickers[spec.ticker]
        ticker, account = state.ticker, spec.account
        if not state.is_open(ts):  # no order queue: an order for a closed venue is not placed
            return None
        mark = state.price(ts)
        holdings_value = self.holdings_value(account)
        qty = self._size(spec, account, mark, ticker.lot)
        if qty <= 0:
            return None
        if spec.side == "buy":
            account.buy(spec.ticker, qty, mark, spec.margin)
        else:
            account.sell(spec.ticker, qty, mark)
        state.push(spec.side, qty * mark, ts)
        fill_ts = ts + int(self.rng.integers(30, 400))
        self.at(fill_ts, lambda t, s=spec.ticker, p=mark, q=qty: self.trade(t, s, p, q))
        ctx = spec.context or spec.login.context
        sign = 1 if spec.side == "buy" else -1
        if spec.visible:
            self._orders += 1
        record = {
            "order_id": f"OD{self._orders:09d}" if spec.visible else None,
            "account_id": account.account_id,
            "ticker": spec.ticker, "side": spec.side, "qty": qty,
            "price": round_to_tick(mark * (1 + sign * spec.premium))
            if spec.order_type == "limit" else None,
            "margin": spec.margin, "session_id": spec.login.session_id, "ts": ts,
            "market": ticker.market, "venue": ticker.venue, "currency": "JPY",
            "order_type": spec.order_type, "channel": ctx.channel, "ip": ctx.ip,
            "device_id": ctx.device_id, "user_agent": ctx.user_agent,
            "holdings_value": round(holdings_value, 2),
        }
        if spec.visible:
            self.records.append((ORDERS, record))
        if spec.tag is not None:
            self.tagged.append((spec.tag, record, mark))
        return record

    def is_open(self, symbol: str, ts: int) -> bool:
        return self.tickers[symbol].is_open(ts)

    def holdings_value(self, account: Account) -> float:
        """Market value of the positions at their last marks (what a gateway's check sees)."""
        return sum(q * self.tickers[s].mark for s, q in account.positions.items())

    @staticmethod
    def _size(spec: OrderSpec, account: Account, mark: float, lot: int) -> int:
        """Shares: the wish rounded to whole lots (at least one), cut to what the book allows."""
        if spec.side == "buy":
            wish = spec.notional / mark if spec.notional is not None else spec.qty
            affordable = int(account.buying_power(spec.margin) / mark // lot)
            return min(max(1, round(wish / lot)), affordable) * lot
        held = account.positions.get(spec.ticker, 0)
        wish = spec.qty if spec.qty is not None else math.ceil(spec.share * held)
        lots = max(1, round(wish / lot)) * lot
        return held if lots >= held else lots  # only a full exit may leave an odd lot
