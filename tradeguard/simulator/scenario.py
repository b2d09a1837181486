"""Scenario files: one TOML document chooses the market, the people, the attacks and the seed.

Every key is declared once, here, as a dataclass field with its type, bounds
and default; the same declaration validates the file (with an error naming the
key, e.g. ``campaigns[0].trade_rate``) and is what ``scenarios/README.md``
documents. Tiers and population roles start from built-in defaults
(:data:`STANDARD_TIERS`, :data:`STANDARD_ROLES`) that a file overrides key by key.

>>> s = parse_scenario({"seed": 3, "session": {"duration_s": 120}})
>>> s.seed, s.session.duration_s, s.market.tiers["penny"].market
(3, 120.0, 'JP')
>>> parse_scenario({"campaigns": [{"start_s": 10, "accesses": 0}]})
Traceback (most recent call last):
...
tradeguard.simulator.scenario.ScenarioError: campaigns[0].accesses: must be >= 1, got 0
"""

from __future__ import annotations

import tomllib
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "CampaignConfig", "FeedbackConfig", "InfraConfig", "MarketConfig", "NEGATIVE_KINDS",
    "NegativeConfig", "PopulationConfig", "ROLES", "ResponsesConfig", "RoleConfig",
    "STANDARD_ROLES", "STANDARD_TIERS", "STANDARD_VENUES", "Scenario", "ScenarioError",
    "SessionConfig", "StuffingConfig", "TECHNIQUES", "TIER_NEGATIVES", "TargetConfig",
    "TierConfig", "VenueConfig", "WarmupConfig", "interval_minutes", "load_scenario",
    "parse_scenario",
]

JST = timezone(timedelta(hours=9))
ROLES = ("index_holders", "active_traders", "day_traders")
TECHNIQUES = ("phishing", "aitm", "infostealer", "stuffing")
NEGATIVE_KINDS = ("news_rush", "new_device", "travel", "rebalance", "bot_day_trader",
                  "travelling_day_trader", "carrier_nat", "all_in")
#: Negative kinds that trade tickers of one tier (``negatives[].tier``).
TIER_NEGATIVES = ("news_rush", "bot_day_trader", "travelling_day_trader", "all_in")


class ScenarioError(ValueError):
    """A scenario file we cannot run; the message starts with the offending key."""


def _key(default: Any = MISSING, kind: Any = float, lo: float | None = None,
         hi: float | None = None, choices: tuple[str, ...] = (), doc: str = "") -> Any:
    """A scenario key: its default, its type and its bounds, checked by :func:`_build`."""
    meta = {"kind": kind, "lo": lo, "hi": hi, "choices": choices, "doc": doc}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: _copy(d), metadata=meta)
    return field(default=default, metadata=meta)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


@dataclass(frozen=True, kw_only=True)
class SessionConfig:
    """The trading session the stream covers (event time)."""

    open: datetime = _key(datetime(2025, 4, 16, 9, 0, tzinfo=JST), datetime)
    duration_s: float = _key(23_400.0, float, lo=1)
    lunch_start_s: float = _key(0.0, float, lo=0)
    lunch_s: float = _key(0.0, float, lo=0)


@dataclass(frozen=True, kw_only=True)
class WarmupConfig:
    """History replayed before the session so the engine knows accounts and tickers."""

    days: int = _key(3, int, lo=1, hi=30)
    unseen_accounts_share: float = _key(0.0, float, lo=0, hi=1)


@dataclass(frozen=True, kw_only=True)
class TierConfig:
    """One liquidity tier of tickers."""

    count: int = _key(kind=int, lo=0, hi=10_000)
    market: str = _key(kind=str)
    venue: str = _key(kind=str)
    code_range: list = _key(kind=(list, int))
    adv_value: float = _key(kind=float, lo=1)
    price_range: list = _key(kind=(list, float))
    daily_vol: float = _key(kind=float, lo=0, hi=1)
    print_interval_s: float = _key(kind=float, lo=0.1)
    lot: int = _key(kind=int, lo=1)
    impact: float = _key(kind=float, lo=0, hi=5)
    impact_half_life_s: float = _key(kind=float, lo=1)
    price_limit: float = _key(kind=float, lo=0, hi=10)
    holders: list = _key(kind=(list, str), choices=ROLES)
    new_listings: int = _key(0, int, lo=0)


STANDARD_TIERS: dict[str, dict[str, Any]] = {
    "index": dict(count=2, market="JP", venue="TSE", code_range=[1300, 2599], adv_value=3e10,
                  price_range=[2_000, 30_000], daily_vol=0.010, print_interval_s=4, lot=1,
                  impact=0.02, price_limit=0.3, impact_half_life_s=300,
                  holders=["index_holders", "active_traders"]),
    "large": dict(count=6, market="JP", venue="TSE", code_range=[6000, 9999], adv_value=2e10,
                  price_range=[1_000, 9_000], daily_vol=0.015, print_interval_s=5, lot=100,
                  impact=0.02, price_limit=0.3, impact_half_life_s=300, holders=["active_traders"]),
    "mid": dict(count=8, market="JP", venue="TSE", code_range=[4000, 5999], adv_value=1.5e9,
                price_range=[500, 5_000], daily_vol=0.02, print_interval_s=15, lot=100,
                impact=0.04, price_limit=0.3, impact_half_life_s=600,
                holders=["active_traders", "day_traders"]),
    "small": dict(count=6, market="JP", venue="TSE", code_range=[2600, 3999], adv_value=1.5e8,
                  price_range=[300, 2_000], daily_vol=0.03, print_interval_s=60, lot=100,
                  impact=0.06, price_limit=0.3, impact_half_life_s=1800,
                  holders=["active_traders", "day_traders"]),
    "penny": dict(count=4, market="JP", venue="TSE", code_range=[2600, 3999], adv_value=2e7,
                  price_range=[40, 300], daily_vol=0.05, print_interval_s=120, lot=100,
                  impact=0.1, price_limit=0.3, impact_half_life_s=3600, holders=["day_traders"]),
    "overseas": dict(count=4, market="HK", venue="HKEX", code_range=[1000, 9999], adv_value=3e7,
                     price_range=[20, 400], daily_vol=0.05, print_interval_s=90, lot=100,
                     impact=0.1, price_limit=0, impact_half_life_s=3600, holders=[]),
}


@dataclass(frozen=True, kw_only=True)
class VenueConfig:
    """A venue's trading hours, in its own time zone (used with ``market.venue_hours``)."""

    timezone: str = _key(kind=str)
    hours: list = _key(kind=(list, str))


STANDARD_VENUES: dict[str, dict[str, Any]] = {
    "TSE": dict(timezone="Asia/Tokyo", hours=["09:00-11:30", "12:30-15:30"]),
    "HKEX": dict(timezone="Asia/Hong_Kong", hours=["09:30-12:00", "13:00-16:00"]),
    "SSE": dict(timezone="Asia/Shanghai", hours=["09:30-11:30", "13:00-15:00"]),
    "NASDAQ": dict(timezone="America/New_York", hours=["09:30-16:00"]),
    "NYSE": dict(timezone="America/New_York", hours=["09:30-16:00"]),
}


@dataclass(frozen=True, kw_only=True)
class MarketConfig:
    tiers: dict = _key({}, (dict, TierConfig))
    venue_hours: bool = _key(False, bool)
    venues: dict = _key({}, (dict, VenueConfig))
    reference_data: bool = _key(True, bool)


@dataclass(frozen=True, kw_only=True)
class RoleConfig:
    """Habits of one kind of legitimate customer (rates per trading day)."""

    count: int = _key(kind=int, lo=0, hi=1_000_000)
    logins_per_day: float = _key(kind=float, lo=0)
    orders_per_login: float = _key(kind=float, lo=0)
    order_value: float = _key(kind=float, lo=1)
    holdings_value: float = _key(kind=float, lo=0)
    cash_value: float = _key(kind=float, lo=0)
    positions: int = _key(kind=int, lo=0, hi=50)
    buy_share: float = _key(kind=float, lo=0, hi=1)
    round_trip_s: float = _key(kind=float, lo=0)
    margin_share: float = _key(kind=float, lo=0, hi=1)
    mfa_share: float = _key(kind=float, lo=0, hi=1)
    contexts: int = _key(kind=int, lo=1, hi=5)
    session_s: float = _key(kind=float, lo=1)


STANDARD_ROLES: dict[str, dict[str, Any]] = {
    "index_holders": dict(count=300, logins_per_day=0.15, orders_per_login=0.5,
                          order_value=1e5, holdings_value=4e6, cash_value=3e5, positions=2,
                          buy_share=0.9, round_trip_s=0, margin_share=0.02, mfa_share=0.4,
                          contexts=2, session_s=300),
    "active_traders": dict(count=120, logins_per_day=2.0, orders_per_login=1.5,
                           order_value=6e5, holdings_value=8e6, cash_value=2e6, positions=8,
                           buy_share=0.5, round_trip_s=0, margin_share=0.3, mfa_share=0.5,
                           contexts=3, session_s=900),
    "day_traders": dict(count=20, logins_per_day=1.0, orders_per_login=20,
                        order_value=1e6, holdings_value=2e6, cash_value=5e6, positions=3,
                        buy_share=0.5, round_trip_s=600, margin_share=0.7, mfa_share=0.6,
                        contexts=1, session_s=7200),
}


@dataclass(frozen=True, kw_only=True)
class PopulationConfig:
    activity_scale: float = _key(1.0, float, lo=0)
    failed_login_rate: float = _key(0.03, float, lo=0, hi=1)
    roles: dict = _key({}, (dict, RoleConfig))


@dataclass(frozen=True, kw_only=True)
class TargetConfig:
    tier: str = _key("penny", str)
    count: int = _key(1, int, lo=1)


@dataclass(frozen=True, kw_only=True)
class InfraConfig:
    """The attacker's infrastructure, shared by every account a campaign takes over."""

    ips: int = _key(3, int, lo=1)
    devices: int = _key(2, int, lo=1)
    asns: list = _key([16509, 14061, 45102, 4134, 9009], (list, int))
    countries: list = _key(["CN", "HK", "VN", "SG"], (list, str))


@dataclass(frozen=True, kw_only=True)
class StuffingConfig:
    """Credential stuffing around a campaign: leaked passwords tried on many accounts."""

    accounts: int = _key(0, int, lo=0)
    unknown_ids: int = _key(0, int, lo=0)
    attempts: list = _key([1, 2], (list, int), lo=1, hi=20)
    window_s: float = _key(1800.0, float, lo=1)
    burst_size: int = _key(20, int, lo=1)
    burst_gap_s: float = _key(1.0, float, lo=0.01)
    mfa_blocked_share: float = _key(0.0, float, lo=0, hi=1)


@dataclass(frozen=True, kw_only=True)
class CampaignConfig:
    """One pump: takeovers, liquidation, buys of the targets, accomplices who dump."""

    name: str = _key("", str)
    start_s: float = _key(kind=float, lo=0)
    accesses: int = _key(10, int, lo=1)
    trade_rate: float = _key(0.44, float, lo=0, hi=1)
    techniques: dict = _key({"phishing": 0.5, "aitm": 0.3, "infostealer": 0.2},
                            (dict, float), lo=0, choices=TECHNIQUES)
    failed_login_rate: float = _key(0.5, float, lo=0, hi=1)
    failed_logins: list = _key([1, 3], (list, int), lo=1, hi=20)
    victim_roles: list = _key(["index_holders", "active_traders"], (list, str), choices=ROLES)
    victims_unseen: bool = _key(False, bool)
    victims_margin: bool = _key(False, bool)
    targets: list = _key([{"tier": "penny", "count": 1}], (list, TargetConfig))
    targets_per_account: int = _key(0, int, lo=0)
    target_rotation: str = _key("account", str, choices=("account", "wave"))
    waves: int = _key(1, int, lo=1)
    wave_interval_s: float = _key(600.0, float, lo=0)
    wave_spread_s: float = _key(120.0, float, lo=0)
    liquidation_share: float = _key(0.9, float, lo=0, hi=1)
    order_pace_s: float = _key(6.0, float, lo=0.1)
    buys_per_account: int = _key(3, int, lo=1)
    margin_rate: float = _key(0.4, float, lo=0, hi=1)
    limit_premium: float = _key(0.03, float, lo=0, hi=1)
    infra: InfraConfig = _key(kind=InfraConfig)
    replay_agent: bool = _key(False, bool)
    replay_device: bool = _key(False, bool)
    stuffing: StuffingConfig = _key(kind=StuffingConfig)
    accomplices: int = _key(2, int, lo=0)
    accomplice_broker: str = _key("this", str, choices=("this", "other"))
    accomplice_value: float = _key(5e6, float, lo=1)
    preposition_s: float = _key(600.0, float, lo=0)
    dump_after_s: float = _key(300.0, float, lo=0)
    dump_spread_s: float = _key(120.0, float, lo=1)


@dataclass(frozen=True, kw_only=True)
class NegativeConfig:
    """A hard negative: legitimate behaviour that looks like an attack."""

    kind: str = _key(kind=str, choices=NEGATIVE_KINDS)
    name: str = _key("", str)
    start_s: float = _key(kind=float, lo=0)
    accounts: int = _key(10, int, lo=1)
    window_s: float = _key(300.0, float, lo=1)
    tier: str = _key("small", str)
    order_value: float = _key(5e5, float, lo=1)
    market_volume_x: float = _key(5.0, float, lo=1)
    countries: list = _key(["US", "TH", "KR", "TW", "FR"], (list, str))
    orders_per_min: float = _key(6.0, float, lo=0.1)
    shared_ips: int = _key(3, int, lo=1)
    asn: int = _key(9605, int, lo=1)
    spend_share: float = _key(0.9, float, lo=0, hi=1)
    new_device_share: float = _key(0.0, float, lo=0, hi=1)
    vpn_share: float = _key(0.0, float, lo=0, hi=1)


@dataclass(frozen=True, kw_only=True)
class FeedbackConfig:
    """Analyst labels on the ``feedback`` topic, some time after the fact."""

    enabled: bool = _key(False, bool)
    delay_s: float = _key(1800.0, float, lo=0)
    fraud_share: float = _key(1.0, float, lo=0, hi=1)
    legit_share: float = _key(0.5, float, lo=0, hi=1)


@dataclass(frozen=True, kw_only=True)
class ResponsesConfig:
    """How the world answers the engine in an in-process run (``tradeguard scorecard``).

    Customers answer step-ups, analysts review what the engine stopped
    (``tradeguard/simulator/responses.py``); broker mode does not use it.
    """

    customers: bool = _key(True, bool)
    factor: str = _key("passkey", str, choices=("passkey", "otp"))
    legit_pass_rate: float = _key(0.98, float, lo=0, hi=1)
    relay_pass_rate: float = _key(0.8, float, lo=0, hi=1)
    attacker_try_rate: float = _key(0.5, float, lo=0, hi=1)
    answer_min_s: float = _key(10.0, float, lo=0)
    answer_max_s: float = _key(120.0, float, lo=0)
    analysts: bool = _key(True, bool)
    review_delay_s: float = _key(1200.0, float, lo=0)
    review_jitter: float = _key(0.5, float, lo=0, hi=1)
    analyst_error_rate: float = _key(0.01, float, lo=0, hi=1)
    reviews_per_hour: float = _key(600.0, float, lo=1)
    analysts_on_shift: int = _key(4, int, lo=1)

    def __post_init__(self) -> None:
        if self.answer_max_s < self.answer_min_s:
            raise ScenarioError(f"responses.answer_max_s: must be >= answer_min_s "
                                f"({self.answer_min_s:g}), got {self.answer_max_s:g}")


@dataclass(frozen=True, kw_only=True)
class Scenario:
    name: str = _key("scenario", str)
    description: str = _key("", str)
    seed: int = _key(0, int, lo=0)
    session: SessionConfig = _key(kind=SessionConfig)
    warmup: WarmupConfig = _key(kind=WarmupConfig)
    market: MarketConfig = _key(kind=MarketConfig)
    population: PopulationConfig = _key(kind=PopulationConfig)
    campaigns: list = _key([], (list, CampaignConfig))
    negatives: list = _key([], (list, NegativeConfig))
    feedback: FeedbackConfig = _key(kind=FeedbackConfig)
    responses: ResponsesConfig = _key(kind=ResponsesConfig)

    @property
    def open_ms(self) -> int:
        return int(self.session.open.timestamp() * 1000)


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file; its name defaults to the file's stem."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"scenario file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    doc.setdefault("name", path.stem)
    return parse_scenario(doc)


def parse_scenario(doc: dict[str, Any]) -> Scenario:
    """Check a parsed document; raise ScenarioError naming the first bad key."""
    doc = _copy(doc)
    market = doc.setdefault("market", {})
    if isinstance(market, dict):
        market["tiers"] = _with_standard(market.get("tiers", {}), STANDARD_TIERS, "market.tiers",
                                         closed=False)
        market["venues"] = _with_standard(market.get("venues", {}), STANDARD_VENUES,
                                          "market.venues", closed=False)
    population = doc.setdefault("population", {})
    if isinstance(population, dict):
        known = [f.name for f in fields(PopulationConfig) if f.name != "roles"] + list(ROLES)
        for key in population:
            if key not in known:
                raise ScenarioError(f"population.{key}: unknown key; known keys: {sorted(known)}")
        roles = {k: population.pop(k) for k in list(population) if k in ROLES}
        population["roles"] = _with_standard(roles, STANDARD_ROLES, "population", closed=True)
    try:
        scenario = _build(Scenario, doc, "")
    except ScenarioError as exc:  # roles are written as population.ROLE, so name them so
        raise ScenarioError(str(exc).replace("population.roles.", "population.")) from None
    _check_references(scenario)
    return scenario


def _with_standard(tables: Any, standard: dict[str, dict], where: str, closed: bool) -> Any:
    """Standard entries overlaid with the file's keys; new names must give every key."""
    if not isinstance(tables, dict):
        return tables  # _build reports the type error
    out = {name: dict(values) for name, values in standard.items()}
    for name, table in tables.items():
        if closed and name not in standard:
            raise ScenarioError(f"{where}.{name}: unknown; known: {sorted(standard)}")
        out[name] = {**out.get(name, {}), **table} if isinstance(table, dict) else table
    return out


def _build(cls: type, table: Any, where: str) -> Any:
    if not isinstance(table, dict):
        raise ScenarioError(f"{where or 'scenario'}: expected a table, got {_type(table)}")
    known = {f.name: f for f in fields(cls)}
    for key in table:
        if key not in known:
            raise ScenarioError(f"{_join(where, key)}: unknown key; known keys: {sorted(known)}")
    values = {}
    for f in fields(cls):
        path = _join(where, f.name)
        if f.name in table:
            values[f.name] = _check(table[f.name], f.metadata, path)
        elif f.default is MISSING and f.default_factory is MISSING:
            kind = f.metadata["kind"]
            if isinstance(kind, type) and hasattr(kind, "__dataclass_fields__"):
                values[f.name] = _build(kind, {}, path)  # a sub-table with all defaults
            else:
                raise ScenarioError(f"{path}: required key is missing")
        elif f.default_factory is not MISSING:
            values[f.name] = _check(f.default_factory(), f.metadata, path)
    return cls(**values)


def _check(value: Any, meta: dict, path: str) -> Any:
    kind, lo, hi, choices = meta["kind"], meta["lo"], meta["hi"], meta["choices"]
    if isinstance(kind, tuple):
        container, item = kind
        if container is list:
            if not isinstance(value, list):
                raise ScenarioError(f"{path}: expected an array, got {_type(value)}")
            return [_check(v, {**meta, "kind": item}, f"{path}[{i}]") for i, v in enumerate(value)]
        if not isinstance(value, dict):
            raise ScenarioError(f"{path}: expected a table, got {_type(value)}")
        out = {}
        for k, v in value.items():
            if choices and k not in choices:
                raise ScenarioError(f"{path}.{k}: unknown; known: {list(choices)}")
            out[k] = _check(v, {**meta, "kind": item, "choices": ()}, f"{path}.{k}")
        return out
    if hasattr(kind, "__dataclass_fields__"):
        return _build(kind, value, path)
    if kind is datetime:
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ScenarioError(f"{path}: expected an offset date-time such as "
                                f"2025-04-16T09:00:00+09:00, got {value!r}")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise ScenarioError(f"{path}: expected true or false, got {_type(value)}")
        return value
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                kind is int and not isinstance(value, int)):
            raise ScenarioError(f"{path}: expected {'an integer' if kind is int else 'a number'}, "
                                f"got {_type(value)}")
        if lo is not None and value < lo:
            raise ScenarioError(f"{path}: must be >= {lo:g}, got {value!r}")
        if hi is not None and value > hi:
            raise ScenarioError(f"{path}: must be <= {hi:g}, got {value!r}")
        return kind(value)
    if not isinstance(value, str):
        raise ScenarioError(f"{path}: expected a string, got {_type(value)}")
    if choices and value not in choices:
        raise ScenarioError(f"{path}: must be one of {list(choices)}, got {value!r}")
    return value


def _check_references(s: Scenario) -> None:
    """Cross-key checks: names that must exist, counts that must fit, times inside the session."""
    tiers, duration = s.market.tiers, s.session.duration_s
    for name, tier in tiers.items():
        where = f"market.tiers.{name}"
        lo, hi = tier.code_range if len(tier.code_range) == 2 else (None, None)
        if lo is None or lo > hi:
            raise ScenarioError(f"{where}.code_range: expected [low, high], got {tier.code_range}")
        if tier.market != "US" and tier.count > hi - lo + 1:
            raise ScenarioError(f"{where}.count: {tier.count} tickers do not fit code_range")
        p = tier.price_range
        if len(p) != 2 or not 0 < p[0] <= p[1]:
            raise ScenarioError(f"{where}.price_range: expected [low, high] > 0, got {p}")
        if tier.new_listings > tier.count:
            raise ScenarioError(f"{where}.new_listings: {tier.new_listings} is more than count "
                                f"({tier.count})")
        if s.market.venue_hours and tier.venue not in s.market.venues:
            raise ScenarioError(f"{where}.venue: no hours for venue {tier.venue!r}; add "
                                f"[market.venues.{tier.venue}] (known: {sorted(s.market.venues)})")
    for name, venue in s.market.venues.items() if s.market.venue_hours else ():
        _check_venue(venue, f"market.venues.{name}")
    if not any(t.count for t in tiers.values()):
        raise ScenarioError("market.tiers: every tier has count 0; the market needs tickers")
    if s.session.lunch_start_s + s.session.lunch_s > duration:
        raise ScenarioError("session.lunch_s: the lunch break ends after the session")
    wanted: dict[str, int] = {}
    for i, c in enumerate(s.campaigns):
        where = f"campaigns[{i}]"
        if c.start_s >= duration:
            raise ScenarioError(f"{where}.start_s: {c.start_s:g} is not inside the session "
                                f"(duration_s = {duration:g})")
        if not sum(c.techniques.values()) > 0:
            raise ScenarioError(f"{where}.techniques: weights must not all be 0")
        for j, t in enumerate(c.targets):
            if t.tier not in tiers:
                raise ScenarioError(f"{where}.targets[{j}].tier: unknown tier {t.tier!r}; "
                                    f"known: {sorted(tiers)}")
            wanted[t.tier] = wanted.get(t.tier, 0) + t.count
        if not c.infra.asns or not c.infra.countries:
            raise ScenarioError(f"{where}.infra: asns and countries must not be empty")
        _check_subsets(c, where)
        for key in ("failed_logins", "stuffing.attempts"):
            lo_hi = c.failed_logins if key == "failed_logins" else c.stuffing.attempts
            if len(lo_hi) != 2 or lo_hi[0] > lo_hi[1]:
                raise ScenarioError(f"{where}.{key}: expected [low, high], got {lo_hi}")
    for tier, n in wanted.items():
        if n > tiers[tier].count:
            raise ScenarioError(f"campaigns: {n} targets wanted in tier {tier!r} but "
                                f"market.tiers.{tier}.count is {tiers[tier].count}")
    for i, n in enumerate(s.negatives):
        where = f"negatives[{i}]"
        if n.start_s >= duration:
            raise ScenarioError(f"{where}.start_s: {n.start_s:g} is not inside the session")
        if n.kind in TIER_NEGATIVES and not tiers.get(n.tier, None):
            raise ScenarioError(f"{where}.tier: unknown tier {n.tier!r}; known: {sorted(tiers)}")
        if n.kind in TIER_NEGATIVES and tiers[n.tier].count == 0:
            raise ScenarioError(f"{where}.tier: tier {n.tier!r} has no tickers")
    accounts = sum(r.count for r in s.population.roles.values())
    needed = (sum(c.accesses + c.stuffing.accounts for c in s.campaigns)
              + sum(n.accounts for n in s.negatives))
    if needed > accounts:
        raise ScenarioError(f"population: {accounts} accounts cannot supply {needed} victims "
                            "and hard-negative accounts")


def _check_subsets(c: CampaignConfig, where: str) -> None:
    """Every target is bought: the buying accounts (or waves) times their subset cover them."""
    k, n = c.targets_per_account, sum(t.count for t in c.targets)
    if not k:
        return
    if k > n:
        raise ScenarioError(f"{where}.targets_per_account: {k} is more than the campaign's "
                            f"{n} targets")
    if c.buys_per_account < k:
        raise ScenarioError(f"{where}.buys_per_account: {c.buys_per_account} buys cannot reach "
                            f"targets_per_account = {k} targets")
    trading = round(c.accesses * c.trade_rate)
    buyers = min(c.waves, trading) if c.target_rotation == "wave" else trading
    if buyers * k < n:
        raise ScenarioError(f"{where}.targets_per_account: {buyers} buying "
                            f"{'waves' if c.target_rotation == 'wave' else 'accounts'} x {k} "
                            f"cannot cover the campaign's {n} targets")


def _check_venue(venue: VenueConfig, where: str) -> None:
    """An IANA time zone and "HH:MM-HH:MM" intervals, in order, within one local day."""
    try:
        ZoneInfo(venue.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScenarioError(f"{where}.timezone: unknown time zone {venue.timezone!r}") from None
    if not venue.hours:
        raise ScenarioError(f"{where}.hours: a venue needs at least one interval")
    last = -1
    for i, text in enumerate(venue.hours):
        try:
            lo, hi = interval_minutes(text)
        except ValueError:
            raise ScenarioError(f"{where}.hours[{i}]: expected \"HH:MM-HH:MM\", got "
                                f"{text!r}") from None
        if not last < lo < hi:
            raise ScenarioError(f"{where}.hours[{i}]: {text!r} must start after the previous "
                                "interval and end after it starts, within the local day")
        last = hi


def interval_minutes(text: str) -> tuple[int, int]:
    """Minutes after local midnight of an "HH:MM-HH:MM" interval (24:00 allowed).

    >>> interval_minutes("09:30-16:00")
    (570, 960)
    """
    ends = text.split("-")
    if len(ends) != 2:
        raise ValueError(text)
    out = []
    for end in ends:
        hh, mm = end.strip().split(":")
        h, m = int(hh), int(mm)
        if not (0 <= h <= 24 and 0 <= m < 60 and h * 60 + m <= 1440 and len(mm) == 2):
            raise ValueError(text)
        out.append(h * 60 + m)
    return out[0], out[1]


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _type(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "table"}.get(type(value), type(value).__name__)
