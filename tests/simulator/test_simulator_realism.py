"""Realism of the simulator (issue 10): each mechanism shows up in the streams it generates.

The three scenarios written for it (stealth, overseas-night, cold-start) are generated once
per module; every test checks one mechanism by an invariant that fails without it.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sim_invariants import (SCENARIOS, check_all, check_books, check_records_valid,
                            check_sessions, check_truth)

from tradeguard.simulator import ScenarioError, generate, load_scenario, parse_scenario

TOKYO, NEW_YORK = ZoneInfo("Asia/Tokyo"), ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def stealth():
    return generate(load_scenario(SCENARIOS / "stealth.toml"))


@pytest.fixture(scope="module")
def night():
    return generate(load_scenario(SCENARIOS / "overseas-night.toml"))


@pytest.fixture(scope="module")
def cold():
    return generate(load_scenario(SCENARIOS / "cold-start.toml"))


def _negative(session, kind):
    return next(n for n in session.truth.negatives if n.kind == kind)


def _logins(session):
    return {r["session_id"]: r for r in session.of("auth.events") if r["event"] == "login_success"}


def _local(ts, tz):
    return datetime.fromtimestamp(ts / 1000, tz)


def _held_after(session, account):
    """{order_id: the account's positions just after that order}, replaying its book."""
    held, out = dict(session.opening_books[account]["positions"]), {}
    for r in session.of("orders"):
        if r["account_id"] == account:
            sign = 1 if r["side"] == "buy" else -1
            held[r["ticker"]] = held.get(r["ticker"], 0) + sign * r["qty"]
            out[r["order_id"]] = {t: q for t, q in held.items() if q}
    return out


def test_the_new_scenarios_pass_every_invariant(stealth, night, cold):
    check_all(stealth)
    check_all(night)
    for check in (check_records_valid, check_books, check_sessions, check_truth):
        check(cold)  # not check_warmup: a cold start has accounts with no history


# -- credential stuffing --------------------------------------------------------------------

def test_stuffing_fails_on_many_accounts_from_a_few_ips_and_enters_few(cold):
    campaign = load_scenario(SCENARIOS / "cold-start.toml").campaigns[0]
    tried = _negative(cold, "stuffing_target")
    entered = [a for a in cold.truth.accounts if a.campaign == "stuffing"]
    attacker_ips = {a.attacker_ip for a in entered}
    failures = [r for r in cold.of("auth.events")
                if r["event"] == "login_failure" and r["ip"] in attacker_ips]
    failed_accounts = {r["account_id"] for r in failures}
    assert len(attacker_ips) <= campaign.infra.ips
    assert set(tried.accounts) <= failed_accounts  # every tried account saw a failure
    unknown = failed_accounts - set(tried.accounts) - {a.account_id for a in entered}
    assert len(unknown) == campaign.stuffing.unknown_ids  # ids that are no account here
    assert not unknown & set(cold.opening_books)
    assert len(entered) == campaign.accesses < len(tried.accounts) / 20
    assert {a.technique for a in entered} == {"stuffing"}
    assert sum(a.traded for a in entered) == round(campaign.accesses * campaign.trade_rate)
    # bursts: each attacker IP sends runs of attempts a second or so apart
    by_ip = defaultdict(list)
    for r in failures:
        by_ip[r["ip"]].append(r["ts"])
    gaps = sorted(b - a for ts in by_ip.values() for a, b in zip(sorted(ts), sorted(ts)[1:]))
    assert gaps[len(gaps) // 2] < 5_000


def test_never_entered_accounts_have_no_attacker_orders(cold):
    tried = set(_negative(cold, "stuffing_target").accounts)
    fraud_accounts = {f.account_id for f in cold.truth.fraud_orders}
    assert not tried & fraud_accounts
    attacker_ips = {a.attacker_ip for a in cold.truth.accounts}
    assert not [r for r in cold.of("orders") if r["account_id"] in tried
                and r["ip"] in attacker_ips]
    blocked = [r for r in cold.of("auth.events") if r["event"] == "mfa_challenge_failed"]
    assert blocked and {r["account_id"] for r in blocked} <= tried  # password right, MFA said no


# -- subsets of targets, slow drip ----------------------------------------------------------

def test_hijacked_accounts_buy_different_subsets_of_the_targets(stealth):
    targets = next(c.targets for c in stealth.truth.campaigns if c.name == "replay")
    bought = defaultdict(set)
    for f in stealth.truth.fraud_orders:
        if f.campaign == "replay" and f.side == "buy":
            bought[f.account_id].add(f.ticker)
    assert bought and all(len(s) == 2 for s in bought.values())
    assert len({frozenset(s) for s in bought.values()}) >= 2
    assert set().union(*bought.values()) == set(targets)


def test_a_slow_drip_shows_each_ticker_one_buyer_at_a_time(stealth):
    first_buy = defaultdict(dict)
    for f in stealth.truth.fraud_orders:
        if f.campaign == "slow-drip" and f.side == "buy":
            first_buy[f.ticker].setdefault(f.account_id, f.ts)
    targets = next(c.targets for c in stealth.truth.campaigns if c.name == "slow-drip")
    assert set(first_buy) == set(targets) and len(targets) == 6
    for ticker, firsts in first_buy.items():
        times = sorted(firsts.values())
        assert all(b - a > 600_000 for a, b in zip(times, times[1:])), ticker


# -- venue hours ----------------------------------------------------------------------------

def test_us_listings_trade_in_the_us_session_at_night_in_japan(night):
    us = {r["ticker"] for r in night.reference if r["venue"] == "NASDAQ"}
    session = [(t, r) for t, r in night.records if t in ("orders", "market.trades")
               and r["ts"] >= night.open_ms]
    assert session and {r["ticker"] for _, r in session} <= us  # the TSE and HKEX are shut
    for _, r in [(t, r) for t, r in night.records if t in ("orders", "market.trades")
                 and r["ticker"] in us]:
        ny = _local(r["ts"], NEW_YORK)
        assert (9, 30) <= (ny.hour, ny.minute) < (16, 0) or (  # a fill prints < 0.4 s later
            (ny.hour, ny.minute) == (16, 0) and ny.second == 0), r
    pump = [f for f in night.truth.fraud_orders if f.phase == "pump"]
    assert pump and all(_local(f.ts, TOKYO).hour in (22, 23, 0, 1, 2, 3, 4) for f in pump)
    assert {f.ticker for f in pump} <= us


def test_home_listings_keep_tse_hours(night):
    tse = {r["ticker"] for r in night.reference if r["venue"] == "TSE"}
    closes = {_local(r["ts"], TOKYO).strftime("%H:%M") for r in night.of("market.trades")
              if r["ticker"] in tse}
    assert closes == {"15:30"}  # only the warm-up days' summaries, at the TSE close


def test_unknown_time_zones_and_bad_hours_are_named():
    with pytest.raises(ScenarioError, match=r"market.venues.X.timezone: unknown"):
        parse_scenario({"market": {"venue_hours": True,
                                   "venues": {"X": {"timezone": "Mars/Olympus",
                                                    "hours": ["09:00-10:00"]}}}})
    with pytest.raises(ScenarioError, match=r"market.venues.TSE.hours\[1\]"):
        parse_scenario({"market": {"venue_hours": True, "venues": {"TSE": {
            "hours": ["09:00-11:30", "11:00-15:00"]}}}})
    with pytest.raises(ScenarioError, match=r"market.tiers.exotic.venue: no hours"):
        parse_scenario({"market": {"venue_hours": True, "tiers": {"exotic": {
            **{k: v for k, v in parse_scenario({}).market.tiers["penny"].__dict__.items()},
            "venue": "MOON"}}}})


# -- hard negatives -------------------------------------------------------------------------

def test_travelling_day_traders_sell_a_whole_position_then_buy_a_thin_ticker(stealth):
    n = _negative(stealth, "travelling_day_trader")
    logins = _logins(stealth)
    orders = {r["order_id"]: r for r in stealth.of("orders")}
    penny = {r["ticker"] for r in stealth.reference if r["ticker"] in n.tickers}
    for account in n.accounts:
        own = sorted((orders[i] for i in n.order_ids if orders[i]["account_id"] == account),
                     key=lambda r: r["ts"])
        assert len(own) >= 3, account
        assert {logins[r["session_id"]]["country"] for r in own} - {"JP"}  # abroad
        after = _held_after(stealth, account)
        earlier = [i for i, r in orders.items() if r["account_id"] == account
                   and r["ts"] < own[0]["ts"]]
        if not (after[earlier[-1]] if earlier else stealth.opening_books[account]["positions"]):
            continue  # nothing left to sell when the trip began
        sell, buy = own[:2]  # first a whole position goes, then a thin ticker comes in
        assert sell["side"] == "sell", account
        assert sell["ticker"] not in after[sell["order_id"]]
        assert buy["side"] == "buy" and buy["ticker"] in penny
        assert buy["ts"] - sell["ts"] <= 40_000


def test_carrier_nat_puts_many_honest_customers_behind_a_few_ips(stealth):
    n = _negative(stealth, "carrier_nat")
    logins = _logins(stealth)
    orders = {r["order_id"]: r for r in stealth.of("orders")}
    mine = [logins[orders[i]["session_id"]] for i in n.order_ids]
    ips = defaultdict(set)
    for r in mine:
        ips[r["ip"]].add(r["account_id"])
    assert len(ips) <= 3 and {(r["asn"], r["country"]) for r in mine} == {(9605, "JP")}
    assert len(set().union(*ips.values())) >= 0.9 * len(n.accounts) and len(n.accounts) == 60
    assert min(len(a) for a in ips.values()) >= 10
    assert n.order_ids and not set(n.order_ids) & stealth.truth.fraud_order_ids


def test_stealthy_replay_differs_from_the_login_only_by_the_ip(stealth):
    logins = _logins(stealth)
    orders = {r["order_id"]: r for r in stealth.of("orders")}
    replayed = [f for f in stealth.truth.fraud_orders if f.campaign == "replay"]
    assert replayed
    for f in replayed:
        order = orders[f.order_id]
        login = logins[order["session_id"]]
        assert (order["user_agent"], order["device_id"]) == (login["user_agent"],
                                                             login["device_id"])
        assert order["ip"] != login["ip"]


def test_all_in_customers_sell_everything_then_buy_one_small_cap(stealth):
    n = _negative(stealth, "all_in")
    orders = {r["order_id"]: r for r in stealth.of("orders")}
    small = {r["ticker"] for r in stealth.reference} & set(n.tickers)
    for account in n.accounts:
        own = sorted((orders[i] for i in n.order_ids if orders[i]["account_id"] == account),
                     key=lambda r: r["ts"])
        buys = [r for r in own if r["side"] == "buy"]
        assert len(buys) == 1 and all(r["ts"] < buys[0]["ts"] for r in own if r is not buys[0])
        assert buys[0]["ticker"] in small
        assert list(_held_after(stealth, account)[buys[0]["order_id"]]) == [buys[0]["ticker"]]


# -- cold start and reference data ----------------------------------------------------------

def test_unseen_accounts_and_new_listings_have_no_history(cold):
    before = [(t, r) for t, r in cold.records if r["ts"] < cold.open_ms]
    seen = {r["account_id"] for t, r in before if t == "auth.events"}
    customers = set(cold.opening_books) - {a.account_id for a in cold.truth.accomplices}
    unseen = customers - seen
    assert len(unseen) == round(0.3 * 1920)
    assert not {r["account_id"] for t, r in before if t == "orders"} & unseen
    assert {r["account_id"] for t, r in cold.records if t == "auth.events"} & unseen  # they act
    listed = {r["ticker"] for r in cold.reference if r["normal_daily_value"] is None}
    assert len(listed) == 2
    assert not [r for t, r in before if t == "market.trades" and r["ticker"] in listed]
    assert [r for r in cold.of("market.trades") if r["ticker"] in listed]  # they trade today
    assert not [a for a, b in cold.opening_books.items() if listed & set(b["positions"])]


def test_unseen_accounts_fail_three_times_then_sell_and_buy_a_new_listing_on_margin(cold):
    victims = [a for a in cold.truth.accounts if a.campaign == "unseen-margin"]
    seen = {r["account_id"] for r in cold.of("auth.events") if r["ts"] < cold.open_ms}
    listed = {r["ticker"] for r in cold.reference if r["normal_daily_value"] is None}
    orders = {r["order_id"]: r for r in cold.of("orders")}
    assert len(victims) == 4
    for a in victims:
        assert a.account_id not in seen and a.failed_logins == 3 and a.attacker_country != "JP"
        events = [r for r in cold.of("auth.events") if r["account_id"] == a.account_id
                  and r["ip"] == a.attacker_ip]
        assert [r["event"] for r in events][:4] == ["login_failure"] * 3 + ["login_success"]
        assert {r["device_id"] for r in events} == {a.attacker_device_id}
        own = [f for f in cold.truth.fraud_orders if f.account_id == a.account_id]
        assert [f.side for f in own] == ["sell", "buy"] and own[1].ticker in listed
        assert orders[own[1].order_id]["margin"]


def test_reference_data_has_one_record_per_ticker(cold, night):
    for session in (cold, night):
        tickers = {r["ticker"] for r in session.of("market.trades")}
        assert {r["ticker"] for r in session.reference} == tickers
        for r in session.reference:
            assert r["ts"] == session.truth.warmup_start_ts and r["shares_outstanding"] > 0
            assert r["listing_date"] <= "2025-04-16" and r["currency"] == "JPY"
            assert (r["normal_daily_value"] is None) == (r["listing_date"] == "2025-04-16")
    scenario = load_scenario(SCENARIOS / "short.toml")
    off = dataclasses.replace(scenario, market=dataclasses.replace(scenario.market,
                                                                   reference_data=False))
    assert generate(off).reference == []


@pytest.mark.parametrize("campaign, message", [
    ({"targets": [{"tier": "penny", "count": 3}], "targets_per_account": 4},
     "campaigns[0].targets_per_account: 4 is more"),
    ({"targets": [{"tier": "penny", "count": 3}], "targets_per_account": 1, "accesses": 4,
      "trade_rate": 0.5}, "campaigns[0].targets_per_account: 2 buying accounts x 1 cannot"),
    ({"targets": [{"tier": "penny", "count": 3}], "targets_per_account": 2,
      "buys_per_account": 1}, "campaigns[0].buys_per_account: 1 buys cannot"),
    ({"failed_logins": [3, 1]}, "campaigns[0].failed_logins: expected [low, high]"),
    ({"stuffing": {"accounts": 10_000}}, "population: 440 accounts cannot supply"),
])
def test_new_campaign_keys_are_checked(campaign, message):
    with pytest.raises(ScenarioError) as err:
        parse_scenario({"campaigns": [{"start_s": 10, **campaign}]})
    assert str(err.value).startswith(message), str(err.value)


@pytest.mark.parametrize("share, expected", [(1.0, "all"), (0.0, "none")])
def test_travellers_vpn_share_puts_them_behind_vpn_exits_abroad(share, expected):
    """vpn_share: the traveller's device on a commercial VPN exit (a hosting network) in the
    country they are in; 0 leaves every trip on the country's consumer network."""
    from tradeguard.simulator.infra import VPN_ASNS
    session = generate(parse_scenario({
        "seed": 5, "session": {"duration_s": 1800},
        "population": {"index_holders": {"count": 40}, "active_traders": {"count": 40},
                       "day_traders": {"count": 20}},
        "negatives": [{"kind": "travel", "start_s": 0, "accounts": 6, "window_s": 600,
                       "vpn_share": share},
                      {"kind": "travelling_day_trader", "start_s": 0, "accounts": 4,
                       "window_s": 600, "tier": "penny", "vpn_share": share}]}))
    logins = _logins(session)
    orders = {r["order_id"]: r for r in session.of("orders")}
    trips = [logins[orders[i]["session_id"]] for n in session.truth.negatives
             for i in n.order_ids]
    assert trips and all(r["country"] != "JP" for r in trips)
    on_vpn = [r["asn"] in VPN_ASNS for r in trips]
    assert all(on_vpn) if expected == "all" else not any(on_vpn)
