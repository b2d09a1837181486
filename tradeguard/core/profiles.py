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
"""

from __future__ import annotations

from bisect import bisect_right

__all__ = ["NO_PROFILE", "PROFILE_LAG_MS", "ProfileBook"]

#: An order is valued with the ticker profile published at least this long before it.
PROFILE_LAG_MS = 60_000

NO_PROFILE = (float("nan"), float("nan"))
#: Versions kept per ticker, at most: an hour of one-minute periods, so a restored
#: worker replaying the records since its snapshot finds the versions they were decided with.
KEEP = 64


class ProfileBook:
    """ticker -> its last few (ts, adv_value, last_price) versions, oldest first."""

    def __init__(self, lag_ms: int = PROFILE_LAG_MS) -> None:
        self.lag_ms = lag_ms
        self._versions: dict[str, list[tuple[int, float, float]]] = {}

    def apply(self, ticker: str, ts: int, adv_value: float, last_price: float) -> None:
        versions = self._versions.setdefault(ticker, [])
        entry = (ts, float(adv_value), float(last_price))
        if entry in versions:
            return  # the same profile again (own output read back): idempotent
        versions.append(entry)
        versions.sort()
        del versions[:-KEEP]

    def at(self, ticker: str, ts: int) -> tuple[float, float]:
        """(adv_value, last_price) of the latest version published ``lag_ms`` before ``ts``."""
        versions = self._versions.get(ticker)
        if not versions:
            return NO_PROFILE
        cutoff = ts - self.lag_ms
        if versions[-1][0] <= cutoff:  # the usual case
            return versions[-1][1:]
        i = bisect_right(versions, (cutoff, float("inf"), float("inf")))
        return versions[i - 1][1:] if i else NO_PROFILE

    def __len__(self) -> int:
        return len(self._versions)
