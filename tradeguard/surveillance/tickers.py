"""Ticker surveillance: market trades and risk-scored order flow of the tickers one worker owns.

Learns each ticker's normal liquidity from trades (shared with every worker as
a ticker profile) and watches the flow of orders re-keyed by ticker for the
pump: several risky accounts buying the same thin ticker within minutes. Then
it decides ``halt_buys``, with the evidence and an expiry.
"""

from __future__ import annotations

import pickle
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

    def __init__(self, profile_every_ms: int = 60_000) -> None:
        self.features: TickerFeatures | None = None
        self.accounts = DenseIds()
        # Every worker needs each ticker's profile, but not after every trade: it
        # is published once per event-time period, as it stood at the period's
        # end, so what is published does not depend on how trades were batched.
        self.profile_every_ms = profile_every_ms
        self._period = -1  # event-time period of the latest trade learned
        self._touched: set[str] = set()  # tickers traded in that period
        # Recent risky buys per ticker, kept only as evidence for a halt record.
        self._risky_buys: dict[str, deque[tuple[int, str, float]]] = {}

    def to_bytes(self) -> bytes:
        return pickle.dumps({
            "format": 1,
            "features": None if self.features is None else self.features.to_bytes(),
            "accounts": self.accounts.to_bytes(),
            "profile_every_ms": self.profile_every_ms,
            "period": self._period,
            "touched": self._touched,
            "risky_buys": self._risky_buys,
        }, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_bytes(cls, blob: bytes) -> "TickerSurveillance":
        """Restore a snapshot written by ``to_bytes`` (our own state topic only: it is a pickle)."""
        state = pickle.loads(blob)
        if state.get("format") != 1:
            raise ValueError(f"ticker snapshot format {state.get('format')!r}, expected 1")
        restored = cls(state["profile_every_ms"])
        if state["features"] is not None:
            restored.features = TickerFeatures.from_bytes(state["features"])
        restored.accounts = DenseIds.from_bytes(state["accounts"])
        restored._period, restored._touched = state["period"], state["touched"]
        restored._risky_buys = state["risky_buys"]
        return restored

    def _features(self, cfg: PolicyConfig) -> TickerFeatures:
        # The window's shape is fixed when the state is first built: [ticker]
        # window_s and risky_account_at changes take effect at the next start.
        if self.features is None:
            self.features = TickerFeatures(TickerParams(window_s=cfg.window_s,
                                                        risky_threshold=cfg.risky_account_at))
        return self.features

    def learn_trades(self, trades: list[dict[str, Any]], cfg: PolicyConfig,
                     now_ms: int) -> list[dict[str, Any]]:
        """Learn from market trades; return the ticker profiles of every period that ended."""
        if not trades:
            return []
        features = self._features(cfg)
        profiles: list[dict[str, Any]] = []
        start = 0
        for i, trade in enumerate(trades + [None]):
            period = None if trade is None else trade["ts"] // self.profile_every_ms
            if trade is not None and period <= self._period:
                continue
            # A trade of a later period: learn what came before it, then close the period.
            segment = trades[start:i]
            if segment:
                features.learn_trades(TradeBatch.from_columns(
                    ticker=[features.ids.get_or_add(t["ticker"]) for t in segment],
                    price=[t["price"] for t in segment], qty=[t["qty"] for t in segment],
                    ts_ms=[t["ts"] for t in segment]))
                self._touched.update(t["ticker"] for t in segment)
            start = i
            if trade is None:
                break
            if self._period >= 0:
                profiles += self._profiles(features, now_ms)
            self._period = period
        return profiles

    def _profiles(self, features: TickerFeatures, now_ms: int) -> list[dict[str, Any]]:
        out = []
        for ticker in sorted(self._touched):
            idx = features.ids.get(ticker)
            adv, last = features.adv_value(idx), features.last_price(idx)
            if np.isfinite(adv) and np.isfinite(last) and last > 0:
                out.append({"ticker": ticker, "adv_value": round(float(adv), 2),
                            "last_price": float(last), "ts": now_ms})
        self._touched.clear()
        return out

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
