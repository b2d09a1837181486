"""Customers: who they are, where they log in from, and what they hold.

Each account keeps a book (cash, positions, margin in use) that every order
goes through, so the streams stay consistent: a sell never exceeds the
position, a buy never exceeds cash plus the unused margin line.

>>> a = Account("AC1", "active_traders", [], mfa=False, margin_limit=1e6, cash=1e5)
>>> a.buy("7203", 100, 2_000.0, margin=True); a.cash, a.margin_used
(0.0, 100000.0)
>>> a.sellable("7203", 500), a.sellable("9984", 100)
(100, 0)
>>> a.sell("7203", 100, 2_000.0); a.cash, a.margin_used
(100000.0, 0.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tradeguard.simulator.infra import HOME_ASNS, MOBILE_ASNS, Context
from tradeguard.simulator.market import Ticker
from tradeguard.simulator.scenario import RoleConfig

__all__ = ["Account", "build_population"]

_ROLE_DEVICES = {  # which devices each kind of customer tends to use, primary first
    "index_holders": ("app_ios", "web_windows", "app_android"),
    "active_traders": ("web_windows", "app_ios", "web_mac", "app_android"),
    "day_traders": ("web_windows", "web_mac"),
}
MARGIN_LEVERAGE = 2.0  # margin line as a multiple of the account's opening equity


@dataclass
class Account:
    account_id: str
    role: str
    contexts: list[Context]
    mfa: bool
    margin_limit: float
    cash: float
    positions: dict[str, int] = field(default_factory=dict)
    watchlist: list[str] = field(default_factory=list)
    margin_used: float = 0.0

    @property
    def primary(self) -> Context:
        return self.contexts[0]

    def buying_power(self, margin: bool) -> float:
        return self.cash + (max(self.margin_limit - self.margin_used, 0.0) if margin else 0.0)

    def sellable(self, ticker: str, qty: int) -> int:
        return min(qty, self.positions.get(ticker, 0))

    def buy(self, ticker: str, qty: int, price: float, margin: bool) -> None:
        cost = qty * price
        from_cash = min(cost, self.cash)
        if not margin and cost > self.cash + 1e-6:
            raise ValueError(f"{self.account_id}: buy of {cost:.0f} exceeds cash {self.cash:.0f}")
        self.cash -= from_cash
        self.margin_used += cost - from_cash
        if self.margin_used > self.margin_limit + 1e-6:
            raise ValueError(f"{self.account_id}: margin {self.margin_used:.0f} over its line")
        self.positions[ticker] = self.positions.get(ticker, 0) + qty

    def sell(self, ticker: str, qty: int, price: float) -> None:
        if qty > self.positions.get(ticker, 0):
            raise ValueError(f"{self.account_id}: sells {qty} {ticker}, holds "
                             f"{self.positions.get(ticker, 0)}")
        self.positions[ticker] -= qty
        if not self.positions[ticker]:
            del self.positions[ticker]
        proceeds = qty * price
        repay = min(proceeds, self.margin_used)  # sale proceeds pay the margin loan first
        self.margin_used -= repay
        self.cash += proceeds - repay


def build_population(roles: dict[str, RoleConfig], tickers: list[Ticker],
                     tier_holders: dict[str, list[str]], rng: np.random.Generator) -> list[Account]:
    """Every legitimate account, with contexts, opening positions, cash and margin line.

    Account ids are shuffled across roles so an id says nothing about its owner.
    """
    n = sum(r.count for r in roles.values())
    ids = rng.choice(90_000_000, size=n, replace=False) + 10_000_000
    accounts = []
    for role in sorted(roles):
        cfg = roles[role]
        universe = [t for t in tickers if role in tier_holders[t.tier]]
        for _ in range(cfg.count):
            account_id = f"AC{ids[len(accounts)]}"
            accounts.append(_account(account_id, role, cfg, universe, rng))
    return accounts


def _account(account_id: str, role: str, cfg: RoleConfig, universe: list[Ticker],
             rng: np.random.Generator) -> Account:
    home = int(rng.choice(HOME_ASNS))
    contexts = []
    for kind in _ROLE_DEVICES[role][: int(rng.integers(1, cfg.contexts + 1))]:
        asn = int(rng.choice(MOBILE_ASNS)) if kind.startswith("app") else home
        contexts.append(Context.draw(rng, kind, asn=asn, country="JP"))
    cash = cfg.cash_value * math.exp(rng.normal(0.0, 0.8))
    account = Account(account_id, role, contexts, mfa=bool(rng.random() < cfg.mfa_share),
                      margin_limit=0.0, cash=round(cash))
    listed = [t for t in universe if not t.listed_today]  # nobody holds today's new listings
    if listed and cfg.positions:
        k = min(len(listed), max(1, int(rng.poisson(cfg.positions))))
        picks = rng.choice(len(listed), size=k, replace=False)
        weights = rng.dirichlet(np.ones(k))
        value = cfg.holdings_value * math.exp(rng.normal(0.0, 1.0))
        for i, w in zip(picks, weights):
            t = listed[int(i)]
            qty = int(value * w / t.open_price // t.lot) * t.lot
            if qty:
                account.positions[t.symbol] = qty
        others = [t.symbol for t in universe if t.symbol not in account.positions]
        extra = min(len(others), int(rng.integers(1, 4)))
        account.watchlist = [others[int(i)] for i in rng.choice(len(others), extra, replace=False)]
    if rng.random() < cfg.margin_share:
        equity = account.cash + sum(q * _price(universe, s) for s, q in account.positions.items())
        account.margin_limit = round(MARGIN_LEVERAGE * equity)
    return account


def _price(universe: list[Ticker], symbol: str) -> float:
    return next(t.open_price for t in universe if t.symbol == symbol)
