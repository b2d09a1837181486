"""Legitimate customers going about their day, and the history that comes before it.

:class:`Customer` is one account with its habits and its own generator: it
logs in from one of its usual contexts (now and then after a typo), places
orders that fit its book, and logs out. The warm-up replays a few earlier
days so the engine has seen every account's devices, networks and orders, and
every ticker's normal volume, before the session starts; except, for a cold
start, the accounts it has never seen (``seen=False``) and the tickers listed
today.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tradeguard.simulator.accounts import Account
from tradeguard.simulator.infra import Context, session_id
from tradeguard.simulator.market import TRADING_DAY_S, TickerState
from tradeguard.simulator.scenario import RoleConfig
from tradeguard.simulator.world import Login, OrderSpec, World

__all__ = ["Customer", "DAY_MS", "SESSION_DAY_MS", "plan_day", "plan_market", "plan_warmup"]

DAY_MS = 86_400_000
SESSION_DAY_MS = int(6.5 * 3600 * 1000)  # 9:00-15:30: when warm-up activity happens


@dataclass
class Customer:
    account: Account
    habits: RoleConfig
    rng: np.random.Generator
    failed_login_rate: float
    seen: bool = True  # False: no history before the session (the engine has never seen it)

    def login(self, world: World, ts: int, context: Context | None = None) -> tuple[Login, int]:
        """Log in (after a mistyped password now and then); the session and when it is open."""
        ctx = context or self.usual_context()
        if self.rng.random() < self.failed_login_rate:
            world.auth(ts, self.account, "login_failure", ctx, None)
            ts += int(self.rng.integers(4_000, 30_000))
        login = Login(session_id(self.rng), ctx)
        world.auth(ts, self.account, "login_success", ctx, login.session_id)
        if self.account.mfa:
            ts += int(self.rng.integers(5_000, 25_000))
            world.auth(ts, self.account, "mfa_challenge_passed", ctx, login.session_id)
        return login, ts

    def usual_context(self) -> Context:
        contexts = self.account.contexts
        if len(contexts) == 1 or self.rng.random() < 0.6:
            return contexts[0]
        return contexts[int(self.rng.integers(1, len(contexts)))]

    def visit(self, world: World, ts: int, close_ms: int, orders: int | None = None,
              context: Context | None = None, tag: tuple | None = None) -> None:
        """A login, some habitual orders within the role's session length, maybe a logout."""
        login, ts = self.login(world, ts, context)
        n = int(self.rng.poisson(self.habits.orders_per_login)) if orders is None else orders
        end = ts + int(self.habits.session_s * 1000 * self.rng.uniform(0.3, 1.0))
        for t in sorted(self.rng.integers(ts + 3_000, max(end, ts + 3_001), n)):
            if t < close_ms:
                world.at(int(t), lambda t, lg=login: self.habitual_order(world, t, lg, close_ms,
                                                                          tag))
        if end < close_ms and self.rng.random() < 0.5:
            world.at(end, lambda t: world.auth(t, self.account, "logout", login.context,
                                               login.session_id))

    def habitual_order(self, world: World, ts: int, login: Login, close_ms: int,
                       tag: tuple | None = None) -> dict | None:
        """Buy something usual or sell part of a position, as the book allows right now."""
        a, rng = self.account, self.rng
        held = [s for s in sorted(a.positions) if world.is_open(s, ts)]
        buy = not held or rng.random() < self.habits.buy_share
        order_type = "limit" if rng.random() < 0.8 else "market"
        candidates = [s for s in a.watchlist if world.is_open(s, ts)] + held
        specs = {
            "buy": candidates and OrderSpec(
                a, _pick(rng, candidates), "buy", login, tag=tag, order_type=order_type,
                margin=a.margin_limit > 0 and rng.random() < 0.5,
                notional=self.habits.order_value * math.exp(rng.normal(0, 0.5))),
            "sell": held and OrderSpec(a, _pick(rng, held), "sell", login, tag=tag,
                                       share=float(rng.choice([0.25, 0.5, 1.0])),
                                       order_type=order_type),
        }
        record = None
        for side in ("buy", "sell") if buy else ("sell", "buy"):  # the other if the book says no
            if specs[side] and (record := world.order(ts, specs[side])):
                break
        if record and record["side"] == "buy" and self.habits.round_trip_s > 0:
            back = ts + int(1000 * (5 + rng.exponential(self.habits.round_trip_s)))
            if back < close_ms:  # a day trader closes the position later the same day
                ticker, qty = record["ticker"], record["qty"]
                world.at(back, lambda t: world.order(t, OrderSpec(
                    a, ticker, "sell", login, qty=qty, tag=tag)))
        return record


def _pick(rng: np.random.Generator, choices: list[str]) -> str | None:
    return choices[int(rng.integers(len(choices)))] if choices else None


def plan_warmup(world: World, customers: list[Customer], open_ms: int, days: int) -> None:
    """Earlier days: every account logs in once from each of its contexts and trades once.

    The engine treats an account's very first login as not new and its first
    order as no first buy; this history makes the session's logins and orders
    count against real habits.
    """
    for c in customers:
        if not c.seen:
            continue
        for k, ctx in enumerate(c.account.contexts):
            day = int(c.rng.integers(1, days + 1))
            ts = open_ms - day * DAY_MS + int(c.rng.integers(0, SESSION_DAY_MS))
            world.at(ts, lambda t, c=c, ctx=ctx, k=k: c.visit(
                world, t, open_ms, orders=1 if k == 0 else 0, context=ctx))


def plan_day(world: World, customers: list[Customer], clock, activity_scale: float) -> None:
    """Session logins: a Poisson number per account at uniform trading-clock times."""
    for c in customers:
        rate = c.habits.logins_per_day * activity_scale * clock.trading_s / TRADING_DAY_S
        for offset in np.sort(c.rng.uniform(0, clock.trading_s, int(c.rng.poisson(rate)))):
            world.at(clock.wall_ms(float(offset)),
                     lambda t, c=c: c.visit(world, t, clock.close_ms))


def plan_market(world: World, states: list[TickerState], clock, days: int,
                rng: np.random.Generator) -> None:
    """The tape: one day-summary print per ticker per warm-up day, then background prints.

    A ticker on a venue with its own hours prints its summaries at that venue's
    last closes before the open and trades only while the venue is open; a
    ticker listed today has no summaries.
    """
    for d in range(days, 0, -1):
        ts = clock.open_ms - d * DAY_MS + SESSION_DAY_MS
        for s in states:
            qty = max(s.ticker.lot, int(s.ticker.adv_shares * math.exp(rng.normal(-0.02, 0.2))))
            if s.ticker.listed_today:
                continue
            if s.hours is not None:
                closes = s.hours.closes_before(clock.open_ms, days)
                if len(closes) < d:
                    continue
                ts = closes[-d]
            world.at(ts, lambda t, s=s, q=qty: _close(world, s, t, q))
    for s in states:
        _next_print(world, s, clock, clock.open_ms)


def _close(world: World, s: TickerState, ts: int, qty: int) -> None:
    """A warm-up day's summary print; its price is the next day's reference for the band."""
    world.trade(ts, s.ticker.symbol, s.close(ts), qty)


def _next_print(world: World, s: TickerState, clock, after_ms: int) -> None:
    if s.hours is not None:  # the venue's own clock, within the session
        ts = s.hours.advance(after_ms, s.next_print_gap_s(s.hours.day_fraction(after_ms),
                                                          after_ms))
        if ts is not None and ts < clock.close_ms:
            world.at(ts, lambda t: _print(world, s, clock, t))
        return
    offset = clock.trading_offset_s(after_ms) + s.next_print_gap_s(clock.day_fraction(after_ms),
                                                                   after_ms)
    if offset < clock.trading_s:
        world.at(clock.wall_ms(offset), lambda t: _print(world, s, clock, t))


def _print(world: World, s: TickerState, clock, ts: int) -> None:
    world.trade(ts, s.ticker.symbol, s.price(ts), s.print_qty(ts))
    _next_print(world, s, clock, ts)
