"""A short scripted trading session with one account-takeover pump, generated in code.

Forty ordinary customers trade large caps through the session. At minute ten
five of them are taken over one after another: an attacker login from a new
device, network and country (after failed attempts), a liquidation of their
holdings, then a large buy of one thin small cap. One ordinary customer logs
in from a new phone (a hard negative), and one trades the same large caps all
session long. Used by ``tradeguard demo`` and by the end-to-end tests, which
know from ``SessionScript.fraud_orders`` which orders were the attacker's.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from streams.topics import AUTH_EVENTS, MARKET_TRADES, ORDERS

__all__ = ["Event", "SessionScript", "scripted_session"]

MINUTE = 60_000

# ticker -> (price in yen, shares traded per minute in normal times, market)
TICKERS = {
    "7203": (2_500.0, 40_000, "JP"),
    "6758": (3_000.0, 25_000, "JP"),
    "8306": (1_500.0, 60_000, "JP"),
    "9984": (8_000.0, 10_000, "JP"),
    "4592": (120.0, 800, "JP"),  # the thin small cap the attackers pump
}
LARGE_CAPS = ("7203", "6758", "8306", "9984")
TARGET = "4592"


@dataclass(frozen=True)
class Event:
    topic: str
    record: dict


@dataclass
class SessionScript:
    warmup: list[Event] = field(default_factory=list)  # history: logins and early trades
    events: list[Event] = field(default_factory=list)  # the session, in event-time order
    fraud_orders: set[str] = field(default_factory=set)
    hijacked: list[str] = field(default_factory=list)
    steady_account: str = ""  # trades large caps all session; must never be held
    new_phone_account: str = ""  # hard negative: new device, legitimate

    @property
    def order_count(self) -> int:
        return sum(1 for e in self.warmup + self.events if e.topic == ORDERS)


def _login(account: str, ts: int, *, device: str, ip: str, country: str = "JP",
           asn: int = 2516, agent: str = "Mozilla/5.0 (Windows NT 10.0) Chrome/131",
           event: str = "login_success") -> Event:
    return Event(AUTH_EVENTS, {
        "account_id": account, "event": event,
        "session_id": f"{account}-{device}-{ts}" if event == "login_success" else None,
        "ip": ip, "device_id": device, "user_agent": agent, "country": country, "asn": asn,
        "ts": ts})


def scripted_session(minutes: int = 20, accounts: int = 40, hijacked: int = 5,
                     seed: int = 7, t0: int | None = None) -> SessionScript:
    """The session; ``minutes`` >= 12 so the attack (minute 10 on) fits.

    ``t0`` is the session's event-time origin (epoch ms); by default the start of the
    minute ``minutes + 1`` minutes ago, so the whole session lies in the recent past, as
    live traffic would, and nothing in it is ahead of the worker's clock.
    """
    if minutes < 12:
        raise ValueError(f"minutes must be >= 12 for the attack to fit, got {minutes}")
    if not 3 <= hijacked < accounts:
        raise ValueError("hijacked must be >= 3 and fewer than accounts")
    if t0 is None:
        t0 = (int(time.time() * 1000) // MINUTE - minutes - 1) * MINUTE
    rng = random.Random(seed)
    script = SessionScript()
    names = [f"cust-{i:03d}" for i in range(accounts)]
    script.hijacked = names[:hijacked]
    script.steady_account = names[hijacked]
    script.new_phone_account = names[hijacked + 1]
    sessions: dict[str, tuple[str, str, str]] = {}  # account -> (session_id, ip, device)
    holdings: dict[str, dict[str, int]] = {}
    order_no = 0

    def order(account: str, ticker: str, side: str, qty: int, ts: int, **extra) -> Event:
        nonlocal order_no
        order_no += 1
        price, _, market = TICKERS[ticker]
        sid, ip, device = sessions[account]
        held = holdings[account]
        value = sum(q * TICKERS[t][0] for t, q in held.items())
        held[ticker] = held.get(ticker, 0) + (qty if side == "buy" else -qty)
        return Event(ORDERS, {
            "order_id": f"ord-{order_no:06d}", "account_id": account, "ticker": ticker,
            "side": side, "qty": qty, "price": price, "margin": False, "session_id": sid,
            "ts": ts, "market": market, "order_type": "limit", "channel": "web", "ip": ip,
            "device_id": device, "holdings_value": float(value), **extra})

    # History: every customer logs in from home, yesterday; trades establish liquidity.
    for i, name in enumerate(names):
        ts = t0 - 24 * 60 * MINUTE + i * 1000
        login = _login(name, ts, device=f"{name}-pc", ip=f"203.0.113.{i % 250}")
        script.warmup.append(login)
        sessions[name] = (login.record["session_id"], login.record["ip"], f"{name}-pc")
        holdings[name] = {t: rng.choice((100, 200, 500)) * 10 for t in LARGE_CAPS}
    timeline: list[tuple[int, Event]] = []
    for ticker, (price, per_min, _) in TICKERS.items():
        for minute in range(-30, minutes):
            for k in range(6):
                ts = t0 + minute * MINUTE + k * 10_000 + rng.randrange(10_000)
                qty = max(100, int(rng.gauss(per_min / 6, per_min / 18)) // 100 * 100)
                trade = Event(MARKET_TRADES, {"ticker": ticker, "qty": qty, "ts": ts,
                                                "price": round(price * rng.uniform(0.995, 1.005), 1)})
                (script.warmup.append(trade) if minute < 0 else timeline.append((ts, trade)))

    # Ordinary customers: a morning login, then a few large-cap orders each.
    for i, name in enumerate(names):
        ts = t0 + rng.randrange(2 * MINUTE)
        device = f"{name}-pc"
        if name == script.new_phone_account:
            device = f"{name}-new-iphone"  # legitimately new: same home network
        login = _login(name, ts, device=device, ip=f"203.0.113.{i % 250}",
                       agent="Mozilla/5.0 (iPhone) Safari/18" if "iphone" in device
                       else "Mozilla/5.0 (Windows NT 10.0) Chrome/131")
        timeline.append((ts, login))
        sessions[name] = (login.record["session_id"], login.record["ip"], device)
        count = minutes if name == script.steady_account else rng.randrange(1, 4)
        for k in range(count):
            ots = ts + MINUTE // 2 + (k * MINUTE if name == script.steady_account
                                      else rng.randrange((minutes - 3) * MINUTE))
            ticker = rng.choice(LARGE_CAPS)
            side = "sell" if holdings[name].get(ticker, 0) >= 200 and rng.random() < 0.3 else "buy"
            timeline.append((ots, order(name, ticker, side, 100, ots)))

    # The takeover: one hijacked account every 40 s from minute 10.
    for k, name in enumerate(script.hijacked):
        start = t0 + 10 * MINUTE + k * 40_000
        # The campaign's infrastructure: two proxy IPs for all hijacked logins.
        ip, device = f"198.51.100.{10 + k % 2}", f"attacker-vm-{k}"
        for j in range(2):
            timeline.append((start - 3000 + j * 1000, _login(
                name, start - 3000 + j * 1000, device=device, ip=ip, country="VN", asn=9009,
                event="login_failure")))
        login = _login(name, start, device=device, ip=ip, country="VN", asn=9009,
                       agent="Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120")
        timeline.append((start, login))
        sessions[name] = (login.record["session_id"], ip, device)
        for j, ticker in enumerate(LARGE_CAPS):  # sell everything, fast
            qty = holdings[name][ticker]
            if qty > 0:
                ev = order(name, ticker, "sell", qty, start + 5000 + j * 1500)
                timeline.append((ev.record["ts"], ev))
                script.fraud_orders.add(ev.record["order_id"])
        ev = order(name, TARGET, "buy", 30_000, start + 15_000, margin=k % 2 == 1)
        timeline.append((ev.record["ts"], ev))
        script.fraud_orders.add(ev.record["order_id"])

    timeline.sort(key=lambda pair: pair[0])
    script.events = [ev for _, ev in timeline]
    script.warmup.sort(key=lambda e: e.record["ts"])
    return script
