"""Hard negatives: legitimate behaviour that a careless detector would take for a takeover.

- ``news_rush``: real news on a small cap; many ordinary accounts buy it within
  minutes from their usual devices, and the whole market's volume in it jumps.
- ``new_device``: customers on a new phone (new device and agent) who trade as usual.
- ``travel``: customers abroad (their own device on a foreign network) who trade,
  often selling something.
- ``rebalance``: customers who sell everything in a few minutes, then buy a
  broad index or large caps with part of the cash.
- ``bot_day_trader``: a day trader whose program trades through the API from a
  cloud server at machine pace; it has done so for months (the warm-up knows it).
- ``travelling_day_trader``: several at once: a day trader abroad (own device on
  a foreign network, sometimes a new phone too) who sells a whole small position,
  buys a thin ticker with it, and day-trades as usual.
- ``carrier_nat``: customers on one mobile carrier whose logins share a few
  carrier-grade NAT addresses (same ASN, Japan); they trade as usual.
- ``all_in``: customers who sell every position, then put most of the cash into
  one small cap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from tradeguard.simulator.infra import VPN_ASNS, TRAVEL_ASNS, Context, ip_in
from tradeguard.simulator.market import Ticker
from tradeguard.simulator.routine import Customer
from tradeguard.simulator.scenario import NegativeConfig
from tradeguard.simulator.truth import HardNegative
from tradeguard.simulator.world import Login, OrderSpec, World

__all__ = ["NegativePlan", "prepare_negative"]

BOT_ASN = 16509  # a cloud region in Tokyo: where retail trading bots run


@dataclass
class NegativePlan:
    cfg: NegativeConfig
    name: str
    start_ms: int
    customers: list[Customer]
    tickers: list[Ticker]  # the news ticker, or the bot's universe
    rng: np.random.Generator

    @property
    def end_ms(self) -> int:
        return self.start_ms + int(self.cfg.window_s * 1000)

    def schedule(self, world: World, close_ms: int) -> None:
        getattr(self, f"_{self.cfg.kind}")(world, close_ms)

    @property
    def tag(self) -> tuple:
        return ("negative", self.name)

    def _times(self) -> list[int]:
        """One start per account, spread over the window (a rush front-loads them)."""
        spread = self.cfg.window_s * 1000
        if self.cfg.kind == "news_rush":
            offsets = np.minimum(self.rng.exponential(spread / 3, len(self.customers)), spread)
        else:
            offsets = self.rng.uniform(0, spread, len(self.customers))
        return [self.start_ms + int(o) for o in offsets]

    def _news_rush(self, world: World, close_ms: int) -> None:
        news = self.tickers[0]
        state = world.tickers[news.symbol]
        state.volume_x, state.volume_x_until = self.cfg.market_volume_x, self.end_ms + int(
            2 * self.cfg.window_s * 1000)
        for c, ts in zip(self.customers, self._times()):
            world.at(ts, lambda t, c=c: self._buy_news(world, c, news, t))

    def _buy_news(self, world: World, c: Customer, news: Ticker, ts: int) -> None:
        login, t = c.login(world, ts)
        for k in range(1 + int(c.rng.random() < 0.3)):
            spec = OrderSpec(c.account, news.symbol, "buy", login, tag=self.tag,
                             margin=c.account.margin_limit > 0 and c.rng.random() < 0.3,
                             notional=self.cfg.order_value * math.exp(c.rng.normal(0, 0.6)),
                             order_type="market" if c.rng.random() < 0.4 else "limit",
                             premium=0.01)
            world.at(t + int(c.rng.integers(5_000, 60_000)) * (k + 1),
                     lambda t, spec=spec: world.order(t, spec))

    def _new_device(self, world: World, close_ms: int) -> None:
        for c, ts in zip(self.customers, self._times()):
            world.at(ts, lambda t, c=c: self._new_phone(world, c, t, close_ms))

    def _new_phone(self, world: World, c: Customer, ts: int, close_ms: int) -> None:
        phone = Context.draw(c.rng, ("app_ios", "app_android")[int(c.rng.integers(2))],
                             asn=c.account.primary.asn, country="JP")
        c.account.contexts.append(phone)  # from now on one of the usual devices
        c.visit(world, ts, close_ms, orders=int(c.rng.integers(1, 4)), context=phone,
                tag=self.tag)

    def _maybe_vpn(self, c: Customer, abroad: Context) -> Context:
        """With ``vpn_share``, the traveller's device behind a commercial VPN exit (a hosting
        network) in the country they are in. Drawn only when the share is set, so a file
        without it keeps its streams."""
        if self.cfg.vpn_share <= 0 or c.rng.random() >= self.cfg.vpn_share:
            return abroad
        return abroad.on_network(c.rng, VPN_ASNS[int(c.rng.integers(len(VPN_ASNS)))],
                                 abroad.country)

    def _travel(self, world: World, close_ms: int) -> None:
        for c, ts in zip(self.customers, self._times()):
            country = self.cfg.countries[int(c.rng.integers(len(self.cfg.countries)))]
            abroad = c.account.primary.on_network(c.rng, TRAVEL_ASNS.get(country, 7922), country)
            abroad = self._maybe_vpn(c, abroad)
            world.at(ts, lambda t, c=c, abroad=abroad: self._trip(world, c, abroad, t, close_ms))

    def _trip(self, world: World, c: Customer, abroad: Context, ts: int, close_ms: int) -> None:
        login, t = c.login(world, ts, abroad)
        if c.account.positions:  # money for the trip
            symbol = sorted(c.account.positions)[int(c.rng.integers(len(c.account.positions)))]
            world.at(t + int(c.rng.integers(10_000, 90_000)), lambda t: world.order(t, OrderSpec(
                c.account, symbol, "sell", login, share=float(c.rng.choice([0.5, 1.0])),
                tag=self.tag)))
        world.at(t + int(c.rng.integers(90_000, 240_000)),
                 lambda t: c.habitual_order(world, t, login, close_ms, self.tag))

    def _at_starts(self, world: World, act) -> None:
        """``act(world, customer, ts)`` at each customer's start in the window."""
        for c, ts in zip(self.customers, self._times()):
            world.at(ts, lambda t, c=c: act(world, c, t))

    def _rebalance(self, world: World, close_ms: int) -> None:
        self._at_starts(world, self._sell_all)

    def _sell_all(self, world: World, c: Customer, ts: int) -> None:
        login, t = c.login(world, ts)
        t = self._sell_everything(world, c, login, t)
        if self.tickers and c.rng.random() < 0.7:  # part of the cash into a broad index
            index = self.tickers[int(c.rng.integers(len(self.tickers)))].symbol
            world.at(t + int(c.rng.integers(60_000, 300_000)), lambda t: world.order(t, OrderSpec(
                c.account, index, "buy", login, tag=self.tag,
                notional=0.5 * c.account.buying_power(False))))

    def _sell_everything(self, world: World, c: Customer, login: Login, t: int) -> int:
        """Whole-position sells of every holding, 10-60 s apart; when the last one goes."""
        for symbol in sorted(c.account.positions):
            t += int(c.rng.integers(10_000, 60_000))
            world.at(t, lambda t, s=symbol: world.order(t, OrderSpec(
                c.account, s, "sell", login, share=1.0, tag=self.tag)))
        return t

    def _all_in(self, world: World, close_ms: int) -> None:
        self._at_starts(world, self._go_all_in)

    def _go_all_in(self, world: World, c: Customer, ts: int) -> None:
        """Sell everything, then spend spend_share of the cash on one small cap."""
        login, t = c.login(world, ts)
        t = self._sell_everything(world, c, login, t)
        pick = self.tickers[int(c.rng.integers(len(self.tickers)))].symbol
        world.at(t + int(c.rng.integers(30_000, 180_000)), lambda t: world.order(t, OrderSpec(
            c.account, pick, "buy", login, tag=self.tag,
            notional=self.cfg.spend_share * c.account.buying_power(False))))

    def _travelling_day_trader(self, world: World, close_ms: int) -> None:
        for c, ts in zip(self.customers, self._times()):
            country = self.cfg.countries[int(c.rng.integers(len(self.cfg.countries)))]
            asn = TRAVEL_ASNS.get(country, 7922)
            abroad = c.account.primary.on_network(c.rng, asn, country)
            if c.rng.random() < self.cfg.new_device_share:  # a phone bought for the trip
                abroad = Context.draw(c.rng, ("app_ios", "app_android")[int(c.rng.integers(2))],
                                      asn=asn, country=country)
            abroad = self._maybe_vpn(c, abroad)
            world.at(ts, lambda t, c=c, abroad=abroad: self._day_trade_abroad(
                world, c, abroad, t, close_ms))

    def _day_trade_abroad(self, world: World, c: Customer, abroad: Context, ts: int,
                          close_ms: int) -> None:
        """Sell the smallest whole position, buy a thin ticker with it, then trade as usual."""
        login, t = c.login(world, ts, abroad)
        a = c.account
        if a.positions:
            value = {s: q * world.tickers[s].mark for s, q in a.positions.items()}
            small = min(sorted(value), key=value.get)
            t += int(c.rng.integers(10_000, 60_000))
            world.at(t, lambda t: world.order(t, OrderSpec(a, small, "sell", login, share=1.0,
                                                           tag=self.tag)))
        pick = self.tickers[int(c.rng.integers(len(self.tickers)))].symbol
        world.at(t + int(c.rng.integers(5_000, 40_000)), lambda t: world.order(t, OrderSpec(
            a, pick, "buy", login, tag=self.tag, margin=a.margin_limit > 0,
            notional=self.cfg.order_value * math.exp(c.rng.normal(0, 0.3)))))
        end = min(self.end_ms, close_ms)
        for k in range(int(c.rng.poisson(c.habits.orders_per_login))):
            at = int(c.rng.integers(t + 60_000, max(end, t + 60_001)))
            if at < close_ms:
                world.at(at, lambda t: c.habitual_order(world, t, login, close_ms, self.tag))

    def _carrier_nat(self, world: World, close_ms: int) -> None:
        nat = [ip_in(self.cfg.asn, self.rng) for _ in range(self.cfg.shared_ips)]
        for c, ts in zip(self.customers, self._times()):
            phone = next((x for x in c.account.contexts if x.channel == "app"), c.account.primary)
            shared = replace(phone, ip=nat[int(self.rng.integers(len(nat)))], asn=self.cfg.asn,
                             country="JP")
            world.at(ts, lambda t, c=c, shared=shared: c.visit(
                world, t, close_ms, orders=int(c.rng.integers(1, 4)), context=shared,
                tag=self.tag))

    def _bot_day_trader(self, world: World, close_ms: int) -> None:
        for c in self.customers:
            world.at(self.start_ms, lambda t, c=c: self._run_bot(world, c, t, close_ms))

    def _run_bot(self, world: World, c: Customer, ts: int, close_ms: int) -> None:
        bot = next(x for x in c.account.contexts if x.channel == "api")
        login, t = c.login(world, ts, bot)
        gap = 60_000 / self.cfg.orders_per_min
        end = min(self.end_ms, close_ms)
        k = 0
        while t < end:  # round trips: buy a ticker, sell it a gap later
            if k % 2 == 0:
                symbol = self.tickers[int(c.rng.integers(len(self.tickers)))].symbol
            world.at(t, lambda t, s=symbol, buy=k % 2 == 0: world.order(t, OrderSpec(
                c.account, s, "buy" if buy else "sell", login, tag=self.tag, premium=0.001,
                margin=buy, notional=self.cfg.order_value if buy else None,
                share=None if buy else 1.0)))
            t += int(gap * c.rng.uniform(0.95, 1.05))
            k += 1

    def truth(self, world: World) -> HardNegative:
        orders = [r for tag, r, _ in world.tagged if tag == self.tag]
        tickers = sorted({r["ticker"] for r in orders} | (
            {self.tickers[0].symbol} if self.cfg.kind == "news_rush" else set()))
        return HardNegative(self.name, self.cfg.kind, self.start_ms, self.end_ms,
                            sorted(c.account.account_id for c in self.customers), tickers,
                            [r["order_id"] for r in orders])


def prepare_negative(cfg: NegativeConfig, customers: list[Customer],
                     rng: np.random.Generator) -> None:
    """Changes that must exist before the warm-up: the bot's cloud server is an old habit."""
    if cfg.kind == "bot_day_trader":
        for c in customers:
            if not any(x.channel == "api" for x in c.account.contexts):
                c.account.contexts.append(Context.draw(rng, "api", asn=BOT_ASN, country="JP"))
