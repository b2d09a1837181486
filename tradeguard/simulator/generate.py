"""``generate(scenario) -> Session``: the whole simulated day, pure and deterministic.

No Kafka here: a Session is a list of ``(topic, record)`` in event-time
order plus the ground truth. Every part of the world draws from its own
generator, derived from the scenario's seed and the part's name, so adding a
campaign does not reshuffle the customers.

>>> from tradeguard.simulator.scenario import parse_scenario
>>> s = generate(parse_scenario({"seed": 1, "session": {"duration_s": 60},
...     "population": {"index_holders": {"count": 5}, "active_traders": {"count": 5},
...                    "day_traders": {"count": 0}}}))
>>> sorted(s.counts()), s.truth.fraud_orders
(['auth.events', 'market.trades', 'orders', 'reference.tickers'], [])
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import orjson

from streams.topics import AUTH_EVENTS, FEEDBACK, MARKET_TRADES, ORDERS, REFERENCE_TICKERS
from tradeguard.simulator.accounts import build_population
from tradeguard.simulator.accounts import Account
from tradeguard.simulator.attacks import CampaignPlan, Stuffing, choose_victims, make_accomplice
from tradeguard.simulator.infra import HOME_ASNS, Context
from tradeguard.simulator.market import TickerState, build_tickers, reference_records
from tradeguard.simulator.negatives import NegativePlan, prepare_negative
from tradeguard.simulator.routine import DAY_MS, Customer, plan_day, plan_market, plan_warmup
from tradeguard.simulator.scenario import STANDARD_ROLES, RoleConfig, Scenario, ScenarioError
from tradeguard.simulator.truth import GroundTruth
from tradeguard.simulator.world import Clock, VenueHours, World

__all__ = ["Session", "generate"]

#: Topics a session writes, in the order replay reports them.
SESSION_TOPICS = (REFERENCE_TICKERS, MARKET_TRADES, AUTH_EVENTS, ORDERS, FEEDBACK)


@dataclass(frozen=True)
class Session:
    """A simulated session: the records for the engine and the truth kept from it."""

    scenario: str
    seed: int
    open_ms: int
    close_ms: int
    records: list[tuple[str, dict[str, Any]]]
    truth: GroundTruth
    opening_books: dict[str, dict[str, Any]] = field(repr=False)

    @property
    def reference(self) -> list[dict[str, Any]]:
        """What a broker's instrument master knows: one ``reference.tickers`` record per
        ticker, first in the stream, at the warm-up's start (``market.reference_data``)."""
        return list(self.of(REFERENCE_TICKERS))

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for name, _ in self.records:
            out[name] = out.get(name, 0) + 1
        return out

    def of(self, name: str) -> Iterator[dict[str, Any]]:
        return (r for t, r in self.records if t == name)

    def to_jsonl(self) -> bytes:
        """One ``{"topic": ..., "record": ...}`` per line: the streams, byte for byte."""
        return b"".join(orjson.dumps({"topic": t, "record": r}) + b"\n" for t, r in self.records)

    def write_jsonl(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.to_jsonl())
        return path


def _rng(seed: int, part: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(part.encode())]))


def generate(scenario: Scenario) -> Session:
    """Simulate the scenario: warm-up days, then the session with its attacks and negatives."""
    seed, cfg = scenario.seed, scenario
    s = cfg.session
    clock = Clock(scenario.open_ms, s.duration_s, s.lunch_start_s, s.lunch_s)
    warmup_start = clock.open_ms - cfg.warmup.days * DAY_MS

    tickers = build_tickers(cfg.market.tiers, _rng(seed, "tickers"))
    states = {t.symbol: TickerState(t, _rng(seed, f"ticker:{t.symbol}"), base_ts=warmup_start)
              for t in tickers}
    for state in states.values():
        if state.ticker.listed_today:
            state.listed_from = clock.open_ms
    if cfg.market.venue_hours:
        hours = {name: VenueHours.build(v.timezone, v.hours, warmup_start, clock.close_ms)
                 for name, v in cfg.market.venues.items()
                 if any(t.venue == name for t in tickers)}
        for state in states.values():
            state.hours = hours[state.ticker.venue]
    world = World(states, clock, _rng(seed, "fills"))
    holders = {name: tier.holders for name, tier in cfg.market.tiers.items()}
    roles = cfg.population.roles
    accounts = build_population(roles, tickers, holders, _rng(seed, "population"))
    customers = [Customer(a, roles[a.role], _rng(seed, f"account:{a.account_id}"),
                          cfg.population.failed_login_rate) for a in accounts]
    _choose_unseen(customers, cfg.warmup.unseen_accounts_share, _rng(seed, "unseen"))

    picker = _rng(seed, "casting")
    free = list(customers)
    campaigns = _cast_campaigns(cfg, clock, tickers, free, picker, seed)
    negatives = _cast_negatives(cfg, clock, tickers, campaigns, free, picker, seed)
    _cast_stuffing(campaigns, customers, free, seed)
    _check_open(cfg, clock, campaigns, states)
    opening_books = {c.account.account_id: _book(c.account) for c in customers}
    accomplices = [c for p in campaigns for c in p.accomplices]
    opening_books.update({c.account.account_id: _book(c.account) for c in accomplices})

    plan_market(world, list(states.values()), clock, cfg.warmup.days, _rng(seed, "tape"))
    visible_accomplices = [c for p in campaigns if p.cfg.accomplice_broker == "this"
                           for c in p.accomplices]
    plan_warmup(world, customers + visible_accomplices, clock.open_ms, cfg.warmup.days)
    plan_day(world, customers, clock, cfg.population.activity_scale)
    for p in campaigns:
        p.schedule(world)
    for n in negatives:
        n.schedule(world, clock.close_ms)
    world.run()

    truth = _truth(scenario, clock, warmup_start, world, campaigns, negatives)
    orders = {r["order_id"]: r for t, r in world.records if t == ORDERS}
    reference = (reference_records(tickers, cfg.session.open.date(), warmup_start,
                                   _rng(seed, "reference")) if cfg.market.reference_data else [])
    records = ([(REFERENCE_TICKERS, r) for r in reference] + world.records
               + _feedback(cfg, truth, orders, _rng(seed, "feedback")))
    records.sort(key=lambda tr: tr[1]["ts"])  # stable: ties keep the walk's order
    return Session(scenario.name, seed, clock.open_ms, clock.close_ms, records, truth,
                   opening_books)


def _choose_unseen(customers: list[Customer], share: float, rng: np.random.Generator) -> None:
    """A cold start: round(share * n) customers, drawn at random, have no history."""
    if share > 0:
        for k in rng.choice(len(customers), size=round(share * len(customers)), replace=False):
            customers[int(k)].seen = False


def _cast_campaigns(cfg: Scenario, clock: Clock, tickers, free: list[Customer],
                    rng: np.random.Generator, seed: int) -> list[CampaignPlan]:
    """Targets, victims and accomplices of every campaign; victims leave the free pool."""
    plans, taken_targets = [], set()
    used_ids = {x.account.account_id for x in free}
    marks = {t.symbol: t.open_price for t in tickers}
    for i, c in enumerate(cfg.campaigns):
        name = c.name or f"campaign-{i + 1}"
        targets = []
        for t in c.targets:
            tier = [x for x in tickers if x.tier == t.tier and x.symbol not in taken_targets]
            if len(tier) < t.count:
                raise ScenarioError(f"campaigns[{i}].targets: tier {t.tier!r} has no "
                                    f"{t.count} tickers left to target")
            for k in rng.choice(len(tier), size=t.count, replace=False):
                targets.append(tier[int(k)])
                taken_targets.add(tier[int(k)].symbol)
        pool = [x for x in free if x.account.role in c.victim_roles and _fits(c, x)]
        if len(pool) < c.accesses:
            raise ScenarioError(f"campaigns[{i}].accesses: {c.accesses} victims wanted, only "
                                f"{len(pool)} free accounts in roles {c.victim_roles}"
                                f"{_filters(c)}")
        victims = choose_victims(pool, c.accesses, rng, marks)
        for v in victims:
            free.remove(v)
        helpers = []
        for k in range(c.accomplices):
            home = Context.draw(rng, "web_windows", asn=int(rng.choice(HOME_ASNS)), country="JP")
            account = make_accomplice(_fresh_id(rng, used_ids), home, c.accomplice_value)
            account.watchlist = [x.symbol for x in tickers if x.tier == "large"][:2]
            helpers.append(Customer(account, RoleConfig(**STANDARD_ROLES["active_traders"]),
                                    _rng(seed, f"accomplice:{name}:{k}"), 0.0))
        plans.append(CampaignPlan.build(c, name, clock.open_ms, targets, victims, helpers,
                                        _rng(seed, f"campaign:{name}")))
    return plans


def _fits(c, customer: Customer) -> bool:
    """Whether a customer can be this campaign's victim (cold start, margin, stuffing)."""
    a = customer.account
    return ((not c.victims_unseen or not customer.seen)
            and (not c.victims_margin or a.margin_limit > 0)
            and (not _only_stuffing(c) or not a.mfa))  # a reused password opens no MFA account


def _only_stuffing(c) -> bool:
    return {t for t, w in c.techniques.items() if w > 0} == {"stuffing"}


def _filters(c) -> str:
    said = [("victims_unseen", c.victims_unseen), ("victims_margin", c.victims_margin),
            ("without MFA (stuffing)", _only_stuffing(c))]
    return "".join(f", {name}" for name, on in said if on)


def _cast_stuffing(campaigns: list[CampaignPlan], customers: list[Customer],
                   free: list[Customer], seed: int) -> None:
    """Accounts a stuffing run tries and never enters, drawn last, each run from its own stream."""
    used = {c.account.account_id for c in customers}
    used |= {c.account.account_id for p in campaigns for c in p.accomplices}
    for i, p in enumerate(campaigns):
        cfg = p.cfg.stuffing
        if not (cfg.accounts or cfg.unknown_ids):
            continue
        rng = _rng(seed, f"stuffing:{p.name}")
        if len(free) < cfg.accounts:
            raise ScenarioError(f"campaigns[{i}].stuffing.accounts: {cfg.accounts} accounts "
                                f"wanted, only {len(free)} free after victims and negatives")
        tried = [free[int(k)] for k in rng.choice(len(free), size=cfg.accounts, replace=False)]
        for c in tried:
            free.remove(c)
        unknown = [Account(_fresh_id(rng, used), "nonexistent", [], mfa=False, margin_limit=0.0,
                           cash=0.0) for _ in range(cfg.unknown_ids)]
        p.stuffing = Stuffing(tried, unknown, rng)


def _check_open(cfg: Scenario, clock: Clock, campaigns: list[CampaignPlan],
                states: dict[str, TickerState]) -> None:
    """With venue hours, a campaign's targets must trade at some point of the session."""
    for i, p in enumerate(campaigns):
        for t in p.targets:
            hours = states[t.symbol].hours
            first = None if hours is None else hours.advance(clock.open_ms, 0.0)
            if hours is not None and (first is None or first >= clock.close_ms):
                raise ScenarioError(f"campaigns[{i}].targets: {t.symbol} ({t.venue}) does not "
                                    "trade during the session (market.venues hours)")


def _fresh_id(rng: np.random.Generator, used: set[str]) -> str:
    """An account id like the population's, so an id never gives an accomplice away."""
    while (account_id := f"AC{int(rng.integers(10_000_000, 100_000_000))}") in used:
        pass
    used.add(account_id)
    return account_id


def _cast_negatives(cfg: Scenario, clock: Clock, tickers, campaigns: list[CampaignPlan],
                    free: list[Customer], rng: np.random.Generator,
                    seed: int) -> list[NegativePlan]:
    targeted = {t.symbol for p in campaigns for t in p.targets}
    plans = []
    for i, n in enumerate(cfg.negatives):
        name = n.name or f"{n.kind}-{i + 1}"
        prefer = {"bot_day_trader": ("day_traders",), "news_rush": ("active_traders",
                                                                   "day_traders"),
                  "travelling_day_trader": ("day_traders",)}
        pool = [c for c in free if c.account.role in prefer.get(n.kind, ())] or free
        if n.kind in ("rebalance", "all_in"):
            pool = [c for c in free if c.account.positions] or free
        if n.kind == "carrier_nat":  # customers whose phone is on this carrier, else any phone
            pool = ([c for c in free if any(x.channel == "app" and x.asn == n.asn
                                            for x in c.account.contexts)]
                    or [c for c in free if any(x.channel == "app" for x in c.account.contexts)]
                    or free)
        if len(pool) < n.accounts:
            pool = free
        picks = [pool[int(k)] for k in rng.choice(len(pool), size=n.accounts, replace=False)]
        for c in picks:
            free.remove(c)
        prepare_negative(n, picks, rng)
        if n.kind == "news_rush":
            tier = [t for t in tickers if t.tier == n.tier and t.symbol not in targeted]
            if not tier:
                raise ScenarioError(f"negatives[{i}].tier: every {n.tier!r} ticker is a campaign "
                                    "target; the news needs an untargeted one")
            chosen = [tier[int(rng.integers(len(tier)))]]
        elif n.kind in ("bot_day_trader", "travelling_day_trader", "all_in"):
            chosen = [t for t in tickers if t.tier == n.tier and t.symbol not in targeted]
            if not chosen:
                raise ScenarioError(f"negatives[{i}].tier: every {n.tier!r} ticker is a "
                                    "campaign target")
        elif n.kind == "rebalance":
            chosen = [t for t in tickers if t.tier in ("index", "large")]
        else:
            chosen = []
        start = clock.open_ms + int(n.start_s * 1000)
        plans.append(NegativePlan(n, name, start, picks, chosen, _rng(seed, f"negative:{name}")))
    return plans


def _truth(cfg: Scenario, clock: Clock, warmup_start: int, world: World,
           campaigns: list[CampaignPlan], negatives: list[NegativePlan]) -> GroundTruth:
    truth = GroundTruth(cfg.name, cfg.seed, warmup_start, clock.open_ms, clock.close_ms)
    for p in campaigns:
        campaign, accounts, fraud, tickers, accomplices = p.truth(world)
        truth.campaigns.append(campaign)
        truth.accounts.extend(accounts)
        truth.fraud_orders.extend(fraud)
        truth.tickers.extend(tickers)
        truth.accomplices.extend(accomplices)
        if p.stuffing is not None:
            truth.negatives.append(p.stuffing_truth(world))
    truth.negatives.extend(n.truth(world) for n in negatives)
    truth.fraud_orders.sort(key=lambda o: (o.ts, o.order_id))
    return truth


def _feedback(cfg: Scenario, truth: GroundTruth, orders: dict[str, dict],
              rng: np.random.Generator) -> list:
    """Analyst labels delay_s (+-50%) after the fact: fraud orders and accounts, legit negatives."""
    fb = cfg.feedback
    if not fb.enabled:
        return []
    delay = lambda: int(fb.delay_s * 1000 * rng.uniform(0.5, 1.5))  # noqa: E731
    out = []
    for o in truth.fraud_orders:
        if rng.random() < fb.fraud_share:
            out.append(_label(o.account_id, o.order_id, "fraud", o.ts + delay()))
    for a in truth.accounts:
        if a.first_fraud_ts is not None and rng.random() < fb.fraud_share:
            out.append(_label(a.account_id, None, "fraud", a.first_fraud_ts + delay()))
    for n in truth.negatives:
        for order_id in n.order_ids:
            if rng.random() < fb.legit_share:
                order = orders[order_id]
                out.append(_label(order["account_id"], order_id, "legit", order["ts"] + delay()))
    return out


def _label(account_id, order_id, label, ts) -> tuple[str, dict[str, Any]]:
    return (FEEDBACK, {"account_id": account_id, "order_id": order_id, "label": label,
                         "source": "simulator", "ts": ts})


def _book(account) -> dict[str, Any]:
    return {"cash": account.cash, "positions": dict(account.positions),
            "margin_limit": account.margin_limit}
