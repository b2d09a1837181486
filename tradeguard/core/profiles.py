"""Each ticker's normal liquidity as the account side reads it: versioned by event time.

Ticker profiles (normal daily traded value, last price) are published by the
ticker side that owns the ticker, once per event-time period, and reach every
worker through a compacted topic, a few milliseconds or, after a restart, a
whole backlog later. An order is therefore valued with the profile published
at least ``lag_ms`` of event time before it (one period by default), not with
whichever arrived last: the answer then does not depend on how fast the
broadcast travelled, and a restored worker replaying old orders sees the same
profiles they were decided with.

>>> book = ProfileBook(lag_ms=60_000)
>>> book.apply("4592", ts=120_000, adv_value=5e7, last_price=101.0)
>>> book.apply("4592", ts=180_000, adv_value=6e7, last_price=99.0)
>>> book.at("4592", 180_000), book.at("4592", 240_000), book.at("4592", 179_999)
((50000000.0, 101.0), (60000000.0, 99.0), (nan, nan))

A ticker that has not traded yet is valued by the instrument master's reference
data (topic ``reference.tickers``), from the record's own ts on: its normal daily
traded value and reference price. A reference with no normal daily value (a new
listing) leaves the value unknown, so the account side values the ticker as a
thin one; its price still values a market order. What the ticker's own trades
say always wins once a profile of them is visible.

>>> book.apply_reference([{"ticker": "7777", "normal_daily_value": 3e9,
...                        "reference_price": 1500.0, "ts": 60_000},
...                       {"ticker": "4599", "normal_daily_value": None,
...                        "reference_price": 800.0, "ts": 60_000}])
>>> book.at("7777", 60_000), book.at("7777", 59_999), book.at("4599", 90_000)
((3000000000.0, 1500.0), (nan, nan), (nan, 800.0))
>>> book.apply("7777", ts=120_000, adv_value=2e8, last_price=1510.0)
>>> book.at("7777", 179_999), book.at("7777", 180_000)
((3000000000.0, 1500.0), (200000000.0, 1510.0))
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any, Iterable

__all__ = ["NO_PROFILE", "PROFILE_LAG_MS", "ProfileBook"]

#: An order is valued with the ticker profile published at least this long before it.
PROFILE_LAG_MS = 60_000

NO_PROFILE = (float("nan"), float("nan"))
_NAN, _INF = float("nan"), float("inf")
#: Versions kept per ticker, at most: an hour of one-minute periods, so a restored
#: worker replaying the records since its snapshot finds the versions they were decided with.
KEEP = 64


class ProfileBook:
    """ticker -> its last few (ts, adv_value, last_price) versions, oldest first: the ones
    learned from trades, and apart, the reference data's (normal_daily_value, reference_price).
    """

    def __init__(self, lag_ms: int = PROFILE_LAG_MS) -> None:
        self.lag_ms = lag_ms
        self._versions: dict[str, list[tuple[int, float, float]]] = {}
        self._reference: dict[str, list[tuple[int, float, float]]] = {}

    def apply(self, ticker: str, ts: int, adv_value: float, last_price: float) -> None:
        versions = self._versions.setdefault(ticker, [])
        entry = (ts, float(adv_value), float(last_price))
        if entry in versions:
            return  # the same profile again (own output read back): idempotent
        versions.append(entry)
        versions.sort()
        del versions[:-KEEP]

    def apply_reference(self, records: Iterable[Any]) -> None:
        """Learn ``reference.tickers`` records (dicts or typed), each valid from its own ts.

        A record with the ts of one already held replaces it (the compacted topic read
        again, or a correction); ``normal_daily_value`` null (a new listing) is kept as NaN.
        """
        for r in records:
            get = r.get if isinstance(r, dict) else r.__getattribute__
            value = get("normal_daily_value")
            ts = get("ts")
            entry = (ts, _NAN if value is None else float(value), float(get("reference_price")))
            versions = self._reference.setdefault(get("ticker"), [])
            versions[:] = [v for v in versions if v[0] != ts]
            versions.append(entry)
            versions.sort()
            del versions[:-KEEP]

    def at(self, ticker: str, ts: int) -> tuple[float, float]:
        """(adv_value, last_price) of the latest version published ``lag_ms`` before ``ts``;
        failing that, (normal_daily_value, reference_price) of the reference valid at ``ts``.
        """
        versions = self._versions.get(ticker)
        if versions:
            cutoff = ts - self.lag_ms
            if versions[-1][0] <= cutoff:  # the usual case
                return versions[-1][1:]
            i = bisect_right(versions, (cutoff, _INF, _INF))
            if i:
                return versions[i - 1][1:]
        return self._referenced(ticker, ts)

    def _referenced(self, ticker: str, ts: int) -> tuple[float, float]:
        """The reference data valid at ``ts`` (from its own ts on, no lag), or NO_PROFILE."""
        versions = self._reference.get(ticker)
        if not versions:
            return NO_PROFILE
        i = bisect_right(versions, (ts, _INF, _INF))
        return versions[i - 1][1:] if i else NO_PROFILE

    def __len__(self) -> int:
        return len(self._versions)
