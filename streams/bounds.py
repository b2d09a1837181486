"""Plausible bounds: values the schema allows but no market produces, rejected with the field.

The JSON Schema says a quantity is a positive integer; it cannot say that an
order for 10^12 shares is not trading. :func:`implausible` does, on records
the typed decoder (``streams/wire.py``) has already accepted, so it only
compares numbers. The limits are data (defaults in ``streams/records.py``,
each a setting); an order beyond them is dead-lettered, not scored as a risk:
a record that cannot be real says nothing about the account behind it, and
scoring it would let one bad gateway move the account's learned history.

>>> from streams.records import ORDER
>>> from streams.wire import BatchDecoder
>>> good = (b'{"order_id": "o1", "account_id": "a1", "ticker": "7203", "side": "buy", '
...         b'"qty": 100, "price": 2500.0, "margin": false, "session_id": null, '
...         b'"ts": 1744761600000}')
>>> huge = good.replace(b'"qty": 100', b'"qty": 1000000000000')
>>> records, _ = BatchDecoder(ORDER).decode_many([good, huge])
>>> [(i, str(e)) for i, e in implausible("orders", records, Limits())]
[(1, 'qty: must be <= 100000000 shares (TRADEGUARD_MAX_ORDER_QTY), got 1000000000000')]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from streams import records as contract
from streams.schema import RecordError
from streams.topics import MARKET_TRADES, ORDERS

__all__ = ["BoundsError", "LimitSettings", "Limits", "implausible", "out_of_time"]


class BoundsError(RecordError):
    """A value beyond a plausible bound; ``field`` names it (``notional``: qty x price)."""

    label = "implausible_value"


class LimitSettings(Protocol):
    """The settings ``Limits.from_settings`` reads (``tradeguard.runtime.settings.Settings``;
    the runtime imports this layer, not the other way)."""

    max_order_qty: int
    max_price: float
    max_order_notional: float
    max_trade_qty: int
    max_holdings_value: float


class PricedOrder(Protocol):
    """A decoded ``orders`` record, as far as its bounds go."""

    qty: int
    price: float | None
    holdings_value: float | None


class Trade(Protocol):
    """A decoded ``market.trades`` record, as far as its bounds go."""

    qty: int
    price: float


class Timed(Protocol):
    """Any decoded record: its event time (ms)."""

    ts: int


@dataclass(frozen=True)
class Limits:
    """The bounds in force (``Limits.from_settings`` reads ``TRADEGUARD_MAX_*``)."""

    max_order_qty: int = contract.PLAUSIBLE_ORDER_QTY
    max_price: float = contract.PLAUSIBLE_PRICE
    max_order_notional: float = contract.PLAUSIBLE_ORDER_NOTIONAL
    max_trade_qty: int = contract.PLAUSIBLE_TRADE_QTY
    max_holdings_value: float = contract.PLAUSIBLE_HOLDINGS_VALUE

    @classmethod
    def from_settings(cls, settings: LimitSettings) -> "Limits":
        return cls(settings.max_order_qty, settings.max_price, settings.max_order_notional,
                   settings.max_trade_qty, settings.max_holdings_value)


def _n(x: float) -> str:
    return f"{int(x)}" if float(x).is_integer() and abs(x) < 1e21 else f"{x:g}"


def _over(field: str, value: float, limit: float, unit: str, setting: str) -> BoundsError:
    return BoundsError(f"must be <= {_n(limit)} {unit} (TRADEGUARD_{setting}), got {_n(value)}",
                       field)


def _order(r: PricedOrder, lim: Limits) -> BoundsError | None:
    if r.qty > lim.max_order_qty:
        return _over("qty", r.qty, lim.max_order_qty, "shares", "MAX_ORDER_QTY")
    if r.price is not None:
        if r.price > lim.max_price:
            return _over("price", r.price, lim.max_price, "yen", "MAX_PRICE")
        if r.qty * r.price > lim.max_order_notional:
            return BoundsError(f"qty x price = {_n(r.qty * r.price)} yen is more than "
                               f"{_n(lim.max_order_notional)} (TRADEGUARD_MAX_ORDER_NOTIONAL)",
                               "notional")
    if r.holdings_value is not None and r.holdings_value > lim.max_holdings_value:
        return _over("holdings_value", r.holdings_value, lim.max_holdings_value, "yen",
                     "MAX_HOLDINGS_VALUE")
    return None


def _trade(r: Trade, lim: Limits) -> BoundsError | None:
    if r.qty > lim.max_trade_qty:
        return _over("qty", r.qty, lim.max_trade_qty, "shares", "MAX_TRADE_QTY")
    if r.price > lim.max_price:
        return _over("price", r.price, lim.max_price, "yen", "MAX_PRICE")
    return None


_CHECKS = {ORDERS: _order, MARKET_TRADES: _trade}


def implausible(topic: str, records: Sequence[PricedOrder] | Sequence[Trade], limits: Limits
                ) -> list[tuple[int, BoundsError]]:
    """(index into ``records``, why) for each decoded record of ``topic`` beyond ``limits``.

    Topics without quantities or prices (logins, labels) have nothing to check.
    Cost: one or two comparisons per record.
    """
    check = _CHECKS.get(topic)
    if check is None:
        return []
    out = []
    for i, r in enumerate(records):
        error = check(r, limits)
        if error is not None:
            out.append((i, error))
    return out


def out_of_time(records: Sequence[Timed], now_ms: int, max_age_s: float | None,
                max_lead_s: float) -> list[tuple[int, RecordError]]:
    """(index into ``records``, why) for each whose event time ``ts`` is implausible against
    the worker's clock ``now_ms``: older than ``max_age_s`` (none: no bound) or ahead of it
    by more than ``max_lead_s``.

    >>> from types import SimpleNamespace as R
    >>> [(i, str(e)) for i, e in out_of_time([R(ts=0), R(ts=500_000)], 1_000, None, 300)]
    [(1, "ts: event time 500000 is more than 300 s ahead of the worker's clock")]
    """
    oldest = now_ms - int(max_age_s * 1000) if max_age_s else None
    newest = now_ms + int(max_lead_s * 1000)
    late = [i for i, r in enumerate(records)
            if r.ts > newest or (oldest is not None and r.ts < oldest)]
    out = []
    for i in late:
        ts = records[i].ts
        why = (f"event time {ts} is more than {max_lead_s:g} s ahead of the worker's clock"
               if ts > newest else f"event time {ts} is more than {max_age_s:g} s old")
        out.append((i, RecordError(why, "ts")))
    return out
