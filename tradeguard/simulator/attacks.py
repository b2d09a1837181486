"""Pump campaigns as the 2025 takeovers ran them (see ``../shared/BRIEF.md``).

A campaign takes over ``accesses`` accounts in waves from shared attacker
infrastructure. About ``trade_rate`` of them (FSA: 1,454 fraudulent trades
out of 3,312 unauthorized accesses, ~44%) are then liquidated and their cash,
and sometimes their margin line, buys the campaign's thin targets; the rest
are visited and left. Accomplices buy the targets before the first wave and
sell into the inflated price afterwards.

Credential techniques, as the engine sees them:

- ``phishing``: a password (and a relayed one-time code) typed into a fake
  site; the attacker logs in from its own device and network, sometimes
  after failed attempts.
- ``infostealer``: a saved password lifted from the victim's browser, with
  its user agent; a login from a new device and network, no MFA (victims
  with MFA fall back to phishing, which relays the code).
- ``aitm``: the victim logs in through a relaying proxy and the attacker
  replays the stolen session cookie: no attacker login at all, just orders on
  the victim's session from another IP, device and agent. A stealthier proxy
  (``replay_agent``, ``replay_device``) carries the victim's user agent and
  device cookie too, so only the IP differs from the login.
- ``stuffing``: a leaked password that the victim reused, found by trying a
  list of them on many accounts (``stuffing``): bursts of failed logins from
  the campaign's few hosting IPs, most on accounts that are never entered;
  the entered ones log in without MFA (an account with MFA is phished instead).

A campaign may spread its targets: each trading account buys
``targets_per_account`` of them, a window that rotates by account or by wave,
so a slow drip over many tickers shows each ticker only a few buyers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from streams.topics import ORDERS
from tradeguard.simulator.accounts import Account
from tradeguard.simulator.infra import UA_KINDS, Context, device_id, ip_in, session_id
from tradeguard.simulator.market import Ticker
from tradeguard.simulator.routine import Customer
from tradeguard.simulator.scenario import TECHNIQUES, CampaignConfig
from tradeguard.simulator.truth import (Accomplice, CampaignTruth, FraudOrder, HardNegative,
                                        TakenOverAccount, TargetedTicker)
from tradeguard.simulator.world import Login, OrderSpec, World

__all__ = ["CampaignPlan", "Stuffing", "choose_victims", "make_accomplice"]

_ACCOMPLICE_BUYS = 3  # pre-position orders per accomplice and target; as many dump orders


@dataclass
class _Victim:
    customer: Customer
    technique: str
    wave: int
    trades: bool
    margin: bool
    attacker: Context
    access_ts: int
    takeover_ts: int | None = None
    failed_logins: int = 0
    targets: list[Ticker] | None = None  # the subset it buys; None: all the campaign's targets


@dataclass
class Stuffing:
    """The never-entered side of a stuffing run: accounts tried and ids that do not exist here."""

    customers: list[Customer]
    unknown: list[Account]
    rng: np.random.Generator


@dataclass
class CampaignPlan:
    cfg: CampaignConfig
    name: str
    open_ms: int
    targets: list[Ticker]
    victims: list[_Victim]
    accomplices: list[Customer]
    rng: np.random.Generator
    attackers: list[Context] = field(default_factory=list)
    stuffing: Stuffing | None = None

    @classmethod
    def build(cls, cfg: CampaignConfig, name: str, open_ms: int, targets: list[Ticker],
              victims: list[Customer], accomplices: list[Customer],
              rng: np.random.Generator) -> "CampaignPlan":
        """Decide who trades, by which technique, in which wave, from which attacker context."""
        start = open_ms + int(cfg.start_s * 1000)
        attackers = _attacker_contexts(cfg, rng)
        weights = np.array([cfg.techniques.get(t, 0.0) for t in TECHNIQUES])
        trading = round(len(victims) * cfg.trade_rate)
        planned = []
        for i, c in enumerate(victims):
            technique = TECHNIQUES[int(rng.choice(len(TECHNIQUES), p=weights / weights.sum()))]
            if technique in ("infostealer", "stuffing") and c.account.mfa:
                technique = "phishing"
            attacker = attackers[i % len(attackers)]
            if technique == "infostealer":  # the stolen browser profile comes with its agent
                attacker = Context(attacker.device_id, c.account.primary.user_agent, "web",
                                   attacker.ip, attacker.asn, attacker.country)
            if technique == "aitm" and (cfg.replay_agent or cfg.replay_device):
                own = c.account.primary  # the proxy relays the victim's headers and cookies
                attacker = Context(own.device_id if cfg.replay_device else attacker.device_id,
                                   own.user_agent if cfg.replay_agent else attacker.user_agent,
                                   own.channel if cfg.replay_agent else attacker.channel,
                                   attacker.ip, attacker.asn, attacker.country)
            wave = i % cfg.waves
            access = start + int(1000 * (wave * cfg.wave_interval_s
                                         + rng.uniform(0, cfg.wave_spread_s)))
            margin = c.account.margin_limit > 0 and bool(rng.random() < cfg.margin_rate)
            planned.append(_Victim(c, technique, wave, i < trading, margin, attacker, access))
        if cfg.targets_per_account:
            k = cfg.targets_per_account
            for j, v in enumerate(v for v in planned if v.trades):
                first = k * (v.wave if cfg.target_rotation == "wave" else j)
                v.targets = [targets[(first + m) % len(targets)] for m in range(k)]
        return cls(cfg, name, open_ms, targets, planned, accomplices, rng, attackers)

    @property
    def start_ms(self) -> int:
        return self.open_ms + int(self.cfg.start_s * 1000)

    # -- the plan, as callbacks on the world ----------------------------------------------

    def schedule(self, world: World) -> None:
        for v in self.victims:
            if v.technique == "aitm":
                world.at(v.access_ts - int(self.rng.integers(60_000, 600_000)),
                         lambda t, v=v: self._victim_login(world, v, t))
            else:
                world.at(v.access_ts, lambda t, v=v: self._attacker_login(world, v, t))
        for a in self.accomplices:
            self._schedule_accomplice(world, a)
        if self.stuffing is not None:
            self._schedule_stuffing(world, self.stuffing)

    def _schedule_stuffing(self, world: World, run: Stuffing) -> None:
        """Failed logins on every tried account, in bursts, each burst from one attacker IP.

        An account with MFA whose password was right (``mfa_blocked_share``) gets a
        login_success and then mfa_challenge_failed: the password works, the factor stops it.
        """
        cfg, rng = self.cfg.stuffing, run.rng
        attempts: list[tuple[Account, str]] = []
        for c in run.customers:
            lo, hi = cfg.attempts
            attempts += [(c.account, "login_failure")] * int(rng.integers(lo, hi + 1))
            if c.account.mfa and rng.random() < cfg.mfa_blocked_share:
                attempts.append((c.account, "mfa_challenge_failed"))
        attempts += [(a, "login_failure") for a in run.unknown]
        order = rng.permutation(len(attempts))
        window = cfg.window_s * 1000
        for b, first in enumerate(range(0, len(order), cfg.burst_size)):
            ctx = self.attackers[b % len(self.attackers)]
            t = self.start_ms + rng.uniform(0, window)
            for i in order[first:first + cfg.burst_size]:
                account, outcome = attempts[int(i)]
                world.at(int(t), lambda ts, a=account, o=outcome, c=ctx: self._try(world, a, o, c,
                                                                                  ts))
                t += 1000 * rng.exponential(cfg.burst_gap_s)

    def _try(self, world: World, account: Account, outcome: str, ctx: Context, ts: int) -> None:
        if outcome == "login_failure":
            world.auth(ts, account, "login_failure", ctx, None)
            return
        sid = session_id(self.stuffing.rng)
        world.auth(ts, account, "login_success", ctx, sid)
        world.auth(ts + int(self.stuffing.rng.integers(3_000, 15_000)), account,
                   "mfa_challenge_failed", ctx, sid)

    def _victim_login(self, world: World, v: _Victim, ts: int) -> None:
        """AiTM: the victim logs in through the proxy; the attacker rides the session later."""
        login, _ = v.customer.login(world, ts, v.customer.account.primary)
        if v.trades:
            world.at(v.access_ts, lambda t: self._liquidate(world, v, login, t))

    def _attacker_login(self, world: World, v: _Victim, ts: int) -> None:
        a, rng = v.customer.account, self.rng
        if rng.random() < self.cfg.failed_login_rate:
            lo, hi = self.cfg.failed_logins
            v.failed_logins = int(rng.integers(lo, hi + 1))
            for _ in range(v.failed_logins):
                world.auth(ts, a, "login_failure", v.attacker, None)
                ts += int(rng.integers(3_000, 20_000))
        login = Login(session_id(rng), v.attacker)
        world.auth(ts, a, "login_success", v.attacker, login.session_id)
        v.takeover_ts = ts
        if a.mfa:  # the one-time code was relayed from the phishing page
            ts += int(rng.integers(5_000, 20_000))
            world.auth(ts, a, "mfa_challenge_passed", v.attacker, login.session_id)
        if v.trades:
            world.at(ts + int(rng.integers(5_000, 30_000)),
                     lambda t: self._liquidate(world, v, login, t))
        else:  # a look around, then gone
            world.at(ts + int(rng.integers(30_000, 300_000)),
                     lambda t: world.auth(t, a, "logout", v.attacker, login.session_id))

    def _liquidate(self, world: World, v: _Victim, login: Login, ts: int) -> None:
        """Sell the largest positions until liquidation_share of the holdings is gone, fast."""
        a, targets = v.customer.account, {t.symbol for t in self.targets}
        marks = {s: q * world.tickers[s].mark for s, q in a.positions.items()
                 if s not in targets and world.is_open(s, ts)}  # what can be sold right now
        goal, sold, t = self.cfg.liquidation_share * sum(marks.values()), 0.0, ts
        for symbol in sorted(marks, key=lambda s: (-marks[s], s)):
            if sold >= goal or goal == 0:
                break
            sold += marks[symbol]
            spec = OrderSpec(a, symbol, "sell", login, share=1.0, order_type="market",
                             context=v.attacker, tag=("fraud", a.account_id, "liquidation"))
            world.at(t, lambda t, spec=spec: world.order(t, spec))
            t += self._pace()
        pump_at = t + int(self.rng.integers(5_000, 20_000))
        world.at(pump_at, lambda t: self._pump(world, v, login, t))

    def _pump(self, world: World, v: _Victim, login: Login, ts: int) -> None:
        """Spend the cash (and the margin line, if the attacker uses it) on the targets."""
        n, targets = self.cfg.buys_per_account, v.targets or self.targets
        for b in range(n):
            target = targets[b % len(targets)].symbol
            world.at(ts, lambda t, b=b, target=target: world.order(t, OrderSpec(
                v.customer.account, target, "buy", login, margin=v.margin, context=v.attacker,
                notional=v.customer.account.buying_power(v.margin) / (n - b),
                premium=self.cfg.limit_premium, tag=("fraud", v.customer.account.account_id,
                                                     "pump"))))
            ts += self._pace()

    def _pace(self) -> int:
        return int(1000 * self.cfg.order_pace_s * self.rng.uniform(0.5, 1.5))

    def _schedule_accomplice(self, world: World, c: Customer) -> None:
        """Buy the targets before the first wave; sell everything into the pump afterwards."""
        cfg, rng, visible = self.cfg, self.rng, self.cfg.accomplice_broker == "this"
        begin = max(self.open_ms + 1_000, self.start_ms - int(cfg.preposition_s * 1000))
        dump = self.start_ms + int(cfg.dump_after_s * 1000)
        tag = ("accomplice", c.account.account_id)
        value = cfg.accomplice_value / (_ACCOMPLICE_BUYS * len(self.targets))

        def session(ts: int, then) -> None:
            login = (c.login(world, ts)[0] if visible
                     else Login(session_id(rng), c.account.primary))
            then(login, ts + int(rng.integers(3_000, 15_000)))

        def preposition(login: Login, ts: int) -> None:
            end = max(self.start_ms, ts + 1_000)
            for t in sorted(rng.integers(ts, end, _ACCOMPLICE_BUYS * len(self.targets))):
                target = self.targets[int(rng.integers(len(self.targets)))].symbol
                world.at(int(t), lambda t, s=target: world.order(t, OrderSpec(
                    c.account, s, "buy", login, notional=value, premium=0.01, tag=tag,
                    visible=visible)))

        def dump_all(login: Login, ts: int) -> None:
            times = sorted(rng.integers(ts, ts + int(cfg.dump_spread_s * 1000), _ACCOMPLICE_BUYS))
            for target in self.targets:
                for k, t in enumerate(times):  # equal chunks: 1/3, then 1/2 of the rest, then all
                    world.at(int(t), lambda t, s=target.symbol, k=k: world.order(t, OrderSpec(
                        c.account, s, "sell", login, share=1.0 / (_ACCOMPLICE_BUYS - k),
                        order_type="market", tag=tag, visible=visible)))

        world.at(begin, lambda t: session(t, preposition))
        world.at(dump - int(rng.integers(5_000, 30_000)), lambda t: session(t, dump_all))

    # -- ground truth, read off what the walk did -----------------------------------------

    def truth(self, world: World) -> tuple[CampaignTruth, list[TakenOverAccount],
                                           list[FraudOrder], list[TargetedTicker],
                                           list[Accomplice]]:
        mine = {v.customer.account.account_id for v in self.victims}
        helpers = {c.account.account_id for c in self.accomplices}
        fraud = [FraudOrder(r["order_id"], r["account_id"], self.name, tag[2], r["ticker"],
                            r["side"], r["qty"], round(r["qty"] * price, 2), r["ts"])
                 for tag, r, price in world.tagged if tag[0] == "fraud" and tag[1] in mine]
        accounts = []
        for v in self.victims:
            own = [o for o in fraud if o.account_id == v.customer.account.account_id]
            buys = [o.ts for o in own if o.side == "buy"]
            first = min((o.ts for o in own), default=None)
            accounts.append(TakenOverAccount(
                v.customer.account.account_id, self.name, v.technique, v.wave, bool(own),
                v.access_ts, first if v.technique == "aitm" else v.takeover_ts, first,
                min(buys, default=None), v.failed_logins, v.margin, v.attacker.ip,
                v.attacker.device_id, v.attacker.asn, v.attacker.country))
        helper_orders = [(r, price) for tag, r, price in world.tagged
                         if tag[0] == "accomplice" and tag[1] in helpers]
        tickers = []
        for t in self.targets:
            buys = [o for o in fraud if o.ticker == t.symbol and o.side == "buy"]
            pre = [r["ts"] for r, _ in helper_orders if r["ticker"] == t.symbol
                   and r["side"] == "buy"]
            dumps = [r["ts"] for r, _ in helper_orders if r["ticker"] == t.symbol
                     and r["side"] == "sell"]
            tickers.append(TargetedTicker(
                t.symbol, self.name, t.tier, t.market, self.start_ms, min(pre, default=None),
                min((o.ts for o in buys), default=None), min(dumps, default=None), len(buys),
                round(sum(o.notional for o in buys), 2)))
        visible = self.cfg.accomplice_broker == "this"
        accomplices = [Accomplice(c.account.account_id, self.name, visible,
                                  [r["order_id"] for r, _ in helper_orders
                                   if r["account_id"] == c.account.account_id and visible])
                       for c in self.accomplices]
        campaign = CampaignTruth(self.name, self.start_ms, [t.symbol for t in self.targets],
                                 sorted(mine), sorted(helpers))
        return campaign, accounts, fraud, tickers, accomplices

    def stuffing_truth(self, world: World) -> HardNegative:
        """The accounts the stuffing run tried and never entered, as a hard negative.

        Its kind is ``stuffing_target``; the owners' own session orders are all legitimate.
        """
        tried = {c.account.account_id for c in self.stuffing.customers}
        orders = [r for t, r in world.records if t == ORDERS and r["account_id"] in tried
                  and r["ts"] >= self.open_ms]
        return HardNegative(f"{self.name}:stuffing", "stuffing_target", self.start_ms,
                            self.start_ms + int(self.cfg.stuffing.window_s * 1000), sorted(tried),
                            sorted({r["ticker"] for r in orders}),
                            [r["order_id"] for r in orders])


def choose_victims(pool: list[Customer], k: int, rng: np.random.Generator,
                   marks: dict[str, float]) -> list[Customer]:
    """Attackers go for money: pick k accounts, with odds proportional to their equity."""
    equity = np.array([c.account.cash + sum(q * marks[s] for s, q in c.account.positions.items())
                       for c in pool]) + 1.0
    picks = rng.choice(len(pool), size=k, replace=False, p=equity / equity.sum())
    return [pool[int(i)] for i in picks]


def _attacker_contexts(cfg: CampaignConfig, rng: np.random.Generator) -> list[Context]:
    """The campaign's devices and IPs; accounts share them round-robin (one crew, few machines)."""
    infra = cfg.infra
    networks = [(infra.asns[j % len(infra.asns)], infra.countries[j % len(infra.countries)])
                for j in range(infra.ips)]
    ips = [(ip_in(asn, rng), asn, country) for asn, country in networks]
    devices = []
    for j in range(infra.devices):
        kind = ("web_windows", "web_linux")[j % 2]
        _, template = UA_KINDS[kind]
        devices.append((device_id(rng), template.format(v=int(rng.integers(20, 36)),
                                                        w=int(rng.integers(1, 9)))))
    n = max(infra.ips, infra.devices)
    return [Context(devices[i % len(devices)][0], devices[i % len(devices)][1], "web",
                    *ips[i % len(ips)]) for i in range(n)]


def make_accomplice(account_id: str, home_context: Context, value: float) -> Account:
    """A mule account: cash to pump with, nothing held, one device."""
    return Account(account_id, "accomplice", [home_context], mfa=False, margin_limit=0.0,
                   cash=round(value * 1.2))
