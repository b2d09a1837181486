"""Ticker surveillance: market trades and risk-scored order flow of the tickers one worker owns.

Learns each ticker's normal liquidity from trades (shared with every worker as
a ticker profile) and watches the flow of orders re-keyed by ticker for the
pump: several risky accounts buying the same thin ticker within minutes. Then
it decides ``halt_buys``, with the evidence and an expiry.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from tradeguard.features.batches import FlowBatch, TradeBatch
from tradeguard.features.ids import DenseIds
from tradeguard.features.ticker import TICKER_FEATURES, TickerFeatures, TickerParams
from tradeguard.policy.config import PolicyConfig
from tradeguard.surveillance.controls import ControlBoard

__all__ = ["TickerSurveillance"]

_COL = {name: j for j, name in enumerate(TICKER_FEATURES)}


class TickerSurveillance:
    """Per-ticker state and the halt decision."""

    def __init__(self, profile_every_ms: int = 60_000, profile_change: float = 0.10) -> None:
        self.features: TickerFeatures | None = None
        self.accounts = DenseIds()
        # Publish a ticker's profile when its ADV moved by `profile_change` or
        # `profile_every_ms` passed: every worker needs it, not every trade.
        self.profile_every_ms = profile_every_ms
        self.profile_change = profile_change
        self._published: dict[str, tuple[int, float]] = {}
        # Recent risky buys per ticker, kept only as evidence for a halt record.
        self._risky_buys: dict[str, deque[tuple[int, str, float]]] = {}

    def _features(self, cfg: PolicyConfig) -> TickerFeatures:
        # The window's shape is fixed when the state is first built: [ticker]
        # window_s and risky_account_at changes take effect at the next start.
        if self.features is None:
            self.features = TickerFeatures(TickerParams(window_s=cfg.window_s,
                                                        risky_threshold=cfg.risky_account_at))
        return self.features

    def learn_trades(self, trades: list[dict[str, Any]], cfg: PolicyConfig,
                     now_ms: int) -> list[dict[str, Any]]:
        """Learn from market trades; return the ticker profiles worth publishing."""
        if not trades:
            return []
        features = self._features(cfg)
        ids = [features.ids.get_or_add(t["ticker"]) for t in trades]
        features.learn_trades(TradeBatch.from_columns(
            ticker=ids, price=[t["price"] for t in trades], qty=[t["qty"] for t in trades],
            ts_ms=[t["ts"] for t in trades]))
        profiles = []
        for ticker, idx in dict(zip((t["ticker"] for t in trades), ids)).items():
            adv, last = features.adv_value(idx), features.last_price(idx)
            if not (np.isfinite(adv) and np.isfinite(last) and last > 0):
                continue
            ts = trades[-1]["ts"]
            seen = self._published.get(ticker)
            if (seen is None or ts - seen[0] >= self.profile_every_ms
                    or abs(adv - seen[1]) > self.profile_change * max(seen[1], 1.0)):
                self._published[ticker] = (ts, adv)
                profiles.append({"ticker": ticker, "adv_value": round(float(adv), 2),
                                 "last_price": float(last), "ts": now_ms})
        return profiles

    def watch_flow(self, flows: list[dict[str, Any]], board: ControlBoard, cfg: PolicyConfig,
                   now_ms: int) -> list[dict[str, Any]]:
        """Update ticker state with order flow; return the halts to publish."""
        if not flows:
            return []
        features = self._features(cfg)
        batch = FlowBatch.from_columns(
            ticker=[features.ids.get_or_add(f["ticker"]) for f in flows],
            account=[self.accounts.get_or_add(f["account_id"]) for f in flows],
            is_buy=[f["side"] == "buy" for f in flows],
            notional=[f["notional"] for f in flows],
            account_risk=[f["account_risk"] for f in flows],
            ts_ms=[f["ts"] for f in flows],
        )
        x = features.transform_flow(batch)
        window_ms = int(cfg.window_s * 1000)
        halts = []
        for i, flow in enumerate(flows):
            ticker = flow["ticker"]
            if flow["side"] == "buy" and flow["account_risk"] >= cfg.risky_account_at:
                buys = self._risky_buys.setdefault(ticker, deque())
                buys.append((flow["ts"], flow["account_id"], flow["notional"]))
                while buys and buys[0][0] < flow["ts"] - window_ms:
                    buys.popleft()
            risky_buyers = x[i, _COL["risky_buyers_window"]]
            risky_share = x[i, _COL["risky_buy_share"]]
            if (risky_buyers >= cfg.halt_risky_buyers and risky_share >= cfg.halt_risky_share
                    and board.ticker_halt(ticker, now_ms) is None):
                buys = self._risky_buys.get(ticker, ())
                halt = {
                    "ticker": ticker,
                    "action": "halt_buys",
                    "reason": (f"{int(risky_buyers)} risky accounts bought within "
                               f"{cfg.window_s:g}s ({risky_share:.0%} of buy value)"),
                    "evidence": {
                        "accounts": sorted({a for _, a, _ in buys}),
                        "risky_notional": round(sum(n for _, _, n in buys), 2),
                        "risky_buyers": int(risky_buyers),
                        "risky_buy_share": round(float(risky_share), 4),
                        "distinct_buyers": int(x[i, _COL["distinct_buyers_window"]]),
                        "volume_x_adv": round(float(x[i, _COL["volume_x_adv"]]), 4),
                        "window_s": cfg.window_s,
                        "trigger_order_id": flow["order_id"],
                    },
                    "expires_at": now_ms + int(cfg.halt_ttl_s * 1000),
                    "source": "engine",
                    "ts": now_ms,
                }
                board.apply_ticker(halt)  # one halt per ticker, even within this batch
                halts.append(halt)
        return halts
