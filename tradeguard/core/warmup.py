"""Load every compiled kernel before the first real order needs it.

Numba compiles each kernel once and caches the machine code on disk
(``cache=True``), but a new process still loads, links and type-checks each one
at its first call: about a second for the whole core. A worker pays that while
its consumer joins the group, on a throwaway engine fed a few made-up records,
instead of in its first decision's latency.
"""

from __future__ import annotations

from streams.topics import AUTH_EVENTS, FEEDBACK, MARKET_TRADES, ORDERS
from tradeguard.core.engine import InProcessEngine
from tradeguard.policy.config import PolicyConfig

__all__ = ["warm_up"]

#: A made-up minute of one account and one ticker: a trade, a login, a buy, a sell, a label.
_T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z; only order matters, never the wall clock


def _stream() -> list[tuple[str, dict]]:
    login = {"account_id": "warm-up", "event": "login_success", "session_id": "warm-up",
             "ip": "192.0.2.1", "device_id": "warm-up", "user_agent": "warm-up",
             "country": "JP", "asn": 64496, "ts": _T0 + 1_000}
    trade = {"ticker": "0000", "price": 100.0, "qty": 100, "ts": _T0}
    orders = [{"order_id": f"warm-up-{i}", "account_id": "warm-up", "ticker": "0000",
               "side": side, "qty": 100, "price": 100.0, "margin": False,
               "session_id": "warm-up", "ts": _T0 + 2_000 + i} for i, side in
              enumerate(("buy", "sell", "buy"))]
    label = {"account_id": "warm-up", "order_id": "warm-up-0", "label": "legit",
             "source": "warm-up", "ts": _T0 + 3_000}
    return [(MARKET_TRADES, trade), (AUTH_EVENTS, login),
            *((ORDERS, o) for o in orders), (FEEDBACK, label)]


def warm_up(policy: PolicyConfig, home_market: str = "JP", anomaly_window: int = 250) -> int:
    """Run the made-up records through a throwaway engine; how many decisions it made.

    >>> warm_up(PolicyConfig.defaults()) >= 3
    True
    """
    engine = InProcessEngine(policy, partitions=1, home_market=home_market,
                             anomaly_window=anomaly_window)
    return sum(len(out.decisions) for out in engine.run(_stream()) if out.decisions is not None)
