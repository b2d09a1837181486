"""The benchmark's input: many accounts that log in, then trade a realistic mix of tickers.

Every account logs in yesterday from home and again today before it trades, so
the session table, the Bloom filters and the habit state are all exercised. A
small share of accounts is taken over (failed logins, then a login from a new
device, network and country) and their orders liquidate large caps and buy
thin small caps; a few customers trade overseas or on margin. The demo's
tickers (``tradeguard.demo.session.TICKERS``) are among the large and thin ones.

Deterministic for a seed; the order id and timestamp are stamped at send time
by ``benchmarks.producer`` so the same templates serve every offered rate.

>>> w = Workload.build(accounts=50, seed=1)
>>> len(w.logins) >= 100, w.orders[0]["account_id"].startswith("acct-")
(True, True)
>>> sorted(w.orders[0]) == sorted(ORDER_FIELDS)
True
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from tradeguard.demo.session import TICKERS as DEMO_TICKERS

__all__ = ["ORDER_FIELDS", "Workload", "order_id"]

ORDER_FIELDS = ("order_id", "account_id", "ticker", "side", "qty", "price", "margin",
                "session_id", "ts", "market", "order_type", "channel", "ip", "device_id",
                "user_agent", "holdings_value")
HIJACKED_SHARE = 0.01
DAY_MS = 86_400_000


def order_id(run: str, seq: int) -> str:
    """The id of order ``seq`` of a run; ``seq`` is read back from it by the collector."""
    return f"{run}-{seq}"


@dataclass
class Workload:
    logins: list[dict] = field(default_factory=list)  # auth.events, to send before any order
    trades: list[dict] = field(default_factory=list)  # market.trades, for ticker profiles
    orders: list[dict] = field(default_factory=list)  # templates; order_id and ts set at send

    @classmethod
    def build(cls, accounts: int = 5_000, orders: int = 50_000, seed: int = 11,
              now_ms: int | None = None) -> "Workload":
        rng = random.Random(seed)
        now = int(time.time() * 1000) if now_ms is None else now_ms
        tickers = _tickers(rng)
        large = [t for t, (_, kind, _) in tickers.items() if kind == "large"]
        thin = [t for t, (_, kind, _) in tickers.items() if kind == "thin"]
        overseas = [t for t, (_, kind, _) in tickers.items() if kind == "overseas"]
        w = cls()
        session: dict[str, dict] = {}
        for i in range(accounts):
            name = f"acct-{i:07d}"
            home = {"ip": f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
                    "device_id": f"{name}-pc", "country": "JP", "asn": 2516 + i % 7,
                    "user_agent": "Mozilla/5.0 (Windows NT 10.0) Chrome/131"}
            w.logins.append(_login(name, now - DAY_MS + i, f"{name}-y", home))
            hijacked = rng.random() < HIJACKED_SHARE
            if hijacked:
                attacker = {"ip": f"198.51.100.{i % 250}", "device_id": f"vm-{i % 13}",
                            "country": "VN", "asn": 9009,
                            "user_agent": "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120"}
                for k in range(2):
                    w.logins.append({**_login(name, now - 60_000 + k, None, attacker),
                                     "event": "login_failure"})
                login = _login(name, now - 30_000, f"{name}-t", attacker)
            else:
                login = _login(name, now - rng.randrange(3_600_000), f"{name}-t", home)
            w.logins.append(login)
            session[name] = {**login, "hijacked": hijacked}
        for ticker, (price, kind, market) in tickers.items():
            for k in range(20):
                qty = (200 if kind == "thin" else 5_000) + rng.randrange(10) * 100
                w.trades.append({"ticker": ticker, "price": round(price * rng.uniform(0.99, 1.01), 1),
                                 "qty": qty, "ts": now - 3_600_000 + k * 60_000})
        names = list(session)
        for _ in range(orders):
            name = names[min(int(rng.paretovariate(1.2)) - 1, len(names) - 1)
                         if rng.random() < 0.3 else rng.randrange(len(names))]
            s = session[name]
            if s["hijacked"]:
                side = rng.choice(("sell", "sell", "buy"))
                ticker = rng.choice(large) if side == "sell" else rng.choice(thin)
                qty = rng.choice((1_000, 5_000, 30_000))
            else:
                side = "buy" if rng.random() < 0.55 else "sell"
                r = rng.random()
                ticker = rng.choice(overseas if r < 0.03 else thin if r < 0.06 else large)
                qty = rng.choice((100, 100, 200, 500, 1_000))
            price, _, market = tickers[ticker]
            w.orders.append({
                "order_id": "", "account_id": name, "ticker": ticker, "side": side, "qty": qty,
                "price": None if rng.random() < 0.1 else price, "margin": rng.random() < 0.02,
                "session_id": s["session_id"], "ts": 0, "market": market,
                "order_type": "limit", "channel": "web", "ip": s["ip"],
                "device_id": s["device_id"], "user_agent": s["user_agent"],
                "holdings_value": float(rng.randrange(1, 500) * 100_000),
            })
        return w


def _login(account: str, ts: int, session_id: str | None, where: dict) -> dict:
    return {"account_id": account, "event": "login_success", "session_id": session_id,
            "ts": ts, **where}


def _tickers(rng: random.Random) -> dict[str, tuple[float, str, str]]:
    """ticker -> (price, kind, market): 200 large caps, 40 thin small caps, 20 overseas."""
    out: dict[str, tuple[float, str, str]] = {}
    for ticker, (price, per_min, market) in DEMO_TICKERS.items():
        out[ticker] = (price, "thin" if per_min < 5_000 else "large", market)
    while len(out) < 200:
        out[str(rng.randrange(1300, 9999))] = (float(rng.randrange(500, 10_000)), "large", "JP")
    for k in range(40):
        out[f"{2000 + k * 37}"] = (float(rng.randrange(50, 400)), "thin", "JP")
    for k in range(20):
        out[f"NASDAQ:Z{k:03d}"] = (float(rng.randrange(1, 30)), "overseas", "CN" if k % 2 else "US")
    return out
