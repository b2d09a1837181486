"""The ticker side of one partition: market trades and risk-scored order flow in; halts out.

Pure, and in event time: trades and flow are merged by their ``ts`` and walked
by one Numba kernel (``TickerFeatures.process``). A halt is stamped with the
``ts`` of the flow that triggered it and lapses ``halt_ttl_s`` of event time
later; its release is published by this side, the halt's owner, once its own
records' time passes the expiry. Ticker profiles (each ticker's normal
liquidity, for every worker's thin-ticker feature) are published once per
event-time period, as they stood at the period's end, so what is published
does not depend on how records were batched.
"""

from __future__ import annotations

import pickle
from collections import deque
from typing import Any, Sequence

import numpy as np

from streams.controls import TickerControl
from tradeguard.core.blocks import FlowBlock
from tradeguard.core.accounts import CAMPAIGN_BUY
from tradeguard.core.board import ControlBoard
from tradeguard.core.infrastructure import InfrastructureWatch
from tradeguard.features.batches import FlowBatch, TradeBatch
from tradeguard.features.ids import DenseIds
from tradeguard.features.ticker import TICKER_FEATURES, TickerFeatures, TickerParams
from tradeguard.policy.config import PolicyConfig

__all__ = ["TickerCore", "TickerOutputs"]

_COL = {name: j for j, name in enumerate(TICKER_FEATURES)}


class TickerOutputs:
    """What one call produced: profiles and ticker controls (halts and releases), in order."""

    __slots__ = ("profiles", "ticker_controls")

    def __init__(self) -> None:
        self.profiles: list[dict[str, Any]] = []
        self.ticker_controls: list[dict[str, Any]] = []


class TickerCore:
    """Per-ticker state of one partition and the halt decision."""

    def __init__(self, profile_every_ms: int = 60_000,
                 infra: InfrastructureWatch | None = None) -> None:
        self.features: TickerFeatures | None = None
        # Logins of every account (shared, not snapshotted): are the risky buyers linked?
        self.infra = InfrastructureWatch() if infra is None else infra
        self.accounts = DenseIds()
        self.profile_every_ms = profile_every_ms
        self._period = -1  # event-time period of the latest trade learned
        self._touched: set[str] = set()  # tickers traded in that period
        # Recent risky buys per ticker, kept only as evidence for a halt record.
        self._risky_buys: dict[str, deque[tuple[int, str, float]]] = {}
        # Halts this side issued and has not released: ticker -> (halt ts, expires_at).
        self._halts: dict[str, tuple[int, int]] = {}
        self.watermark = -1  # the latest event time processed

    def _features(self, cfg: PolicyConfig) -> TickerFeatures:
        # The window's shape is fixed when the state is first built: [ticker]
        # window_s and risky_account_at changes take effect at the next start.
        if self.features is None:
            self.features = TickerFeatures(TickerParams(window_s=cfg.window_s,
                                                        risky_threshold=cfg.risky_account_at))
        return self.features

    # -- the one way in -------------------------------------------------------------------

    def process(self, trades: Sequence[Any], flows: FlowBlock, board: ControlBoard,
                cfg: PolicyConfig) -> TickerOutputs:
        """Trades (typed records) and flow (a block), each sorted by event time, merged."""
        out = TickerOutputs()
        if not trades and not len(flows):
            return out
        features = self._features(cfg)
        trades = sorted(trades, key=lambda t: t.ts)
        flows = flows.sorted_by_time()
        trade_ts = np.array([t.ts for t in trades], dtype=np.int64)
        # Cut where a trade opens a later profile period: the profiles of the period that
        # ended are published as they stood at its end.
        periods = trade_ts // self.profile_every_ms
        cuts = [0] + (np.flatnonzero(np.diff(periods)) + 1).tolist() + [len(trades)]
        f = 0
        for start, stop in zip(cuts[:-1], cuts[1:]):
            period = int(periods[start]) if stop > start else self._period
            if period > self._period:
                if self._period >= 0:
                    # Flow up to the new period's first trade belongs to the old one.
                    f_end = int(np.searchsorted(flows.ts, trade_ts[start], side="left"))
                    self._step(features, [], flows, f, f_end, board, cfg, out)
                    f = f_end
                    out.profiles += self._profiles(features, self.period_end_ms())
                self._period = period
            f_end = (len(flows) if stop == len(trades)
                     else int(np.searchsorted(flows.ts, trade_ts[stop], side="left")))
            self._step(features, trades[start:stop], flows, f, f_end, board, cfg, out)
            f = f_end
        if f < len(flows):
            self._step(features, [], flows, f, len(flows), board, cfg, out)
        out.ticker_controls += self._release_expired(board)
        return out

    def close_periods(self, up_to_ms: int) -> list[dict[str, Any]]:
        """Publish the profiles of every period that ended by ``up_to_ms`` (a watermark).

        The in-process engine calls this at each period boundary of the stream, so
        the orders after the boundary see the profiles of the period before it,
        however the stream was batched.
        """
        period = up_to_ms // self.profile_every_ms
        if self.features is None or self._period < 0 or period <= self._period:
            return []
        profiles = self._profiles(self.features, self.period_end_ms())
        self._period = period
        return profiles

    def period_end_ms(self) -> int:
        return (self._period + 1) * self.profile_every_ms

    def _step(self, features: TickerFeatures, trades: list, flows: FlowBlock, f0: int, f1: int,
              board: ControlBoard, cfg: PolicyConfig, out: TickerOutputs) -> None:
        if not trades and f1 <= f0:
            return
        t_ts = [t.ts for t in trades]
        trade_batch = TradeBatch.from_columns(
            ticker=[features.ids.get_or_add(t.ticker) for t in trades],
            price=[t.price for t in trades], qty=[t.qty for t in trades], ts_ms=t_ts)
        if f1 <= f0:  # trades alone (a quiet spell of flow, or the replay's profile pass)
            features.learn_trades(trade_batch)
            self._touched.update(t.ticker for t in trades)
            self.watermark = max(self.watermark, int(max(t_ts)))
            return
        tickers = flows.ticker[f0:f1]
        flow_ts = flows.ts[f0:f1]
        flow_batch = FlowBatch.from_columns(
            ticker=[features.ids.get_or_add(t) for t in tickers],
            account=[self.accounts.get_or_add(a) for a in flows.account_id[f0:f1]],
            is_buy=[s == "buy" for s in flows.side[f0:f1]],
            notional=flows.notional[f0:f1], account_risk=flows.account_risk[f0:f1],
            ts_ms=flow_ts)
        from tradeguard.core.accounts import _runs  # one merge rule for both sides

        x = features.process(trade_batch, flow_batch, _runs(t_ts, flow_ts.tolist()))
        self._touched.update(t.ticker for t in trades)
        if trades:
            self.watermark = max(self.watermark, int(max(t_ts)))
        if f1 > f0:
            self.watermark = max(self.watermark, int(flow_ts.max()))
            self._watch(flows, f0, f1, flow_batch, x, board, cfg, out)

    def _watch(self, flows: FlowBlock, f0: int, f1: int, batch: FlowBatch, x: np.ndarray,
               board: ControlBoard, cfg: PolicyConfig, out: TickerOutputs) -> None:
        """Risky buys as evidence; a halt where enough risky accounts bought the ticker."""
        risky_buy = batch.is_buy & (batch.account_risk >= cfg.risky_account_at)
        # The account side marks a campaign buy with a risk no score reaches.
        campaign_buy = (batch.is_buy & (batch.account_risk >= CAMPAIGN_BUY)
                        & (cfg.campaign_link_accounts > 0))
        trigger = ((x[:, _COL["risky_buyers_window"]] >= cfg.halt_risky_buyers)
                   & (x[:, _COL["risky_buy_share"]] >= cfg.halt_risky_share))
        window_ms = int(cfg.window_s * 1000)
        for i in np.flatnonzero(risky_buy | trigger | campaign_buy).tolist():
            j = f0 + i
            ticker, ts = flows.ticker[j], int(flows.ts[j])
            if risky_buy[i]:
                buys = self._risky_buys.setdefault(ticker, deque())
                buys.append((ts, flows.account_id[j], float(flows.notional[j])))
                while buys and buys[0][0] < ts - window_ms:
                    buys.popleft()
            if (trigger[i] and not campaign_buy[i]
                    and x[i, _COL["risky_buyers_window"]] < cfg.halt_unlinked_buyers
                    and not self._linked(ticker, ts, cfg)):
                # Enough risky buyers, but nothing ties them together: honest customers
                # stepped up at the same time (two travellers in one penny stock) until
                # there are halt_unlinked_buyers of them.
                continue
            # A halt in force at this side's latest event time already covers the ticker:
            # flow that arrives late (another worker's account side, behind this one) with
            # an earlier ts must not issue a second halt, which would replace the first
            # with an earlier expiry and name the ticker twice.
            if ((trigger[i] or campaign_buy[i]) and board.ticker_halt(ticker, ts) is None
                    and board.ticker_halt(ticker, self.watermark) is None):
                out.ticker_controls.append(self._halt(ticker, ts, flows.order_id[j], x[i], cfg,
                                                      bool(campaign_buy[i])))
                board.apply_ticker(out.ticker_controls[-1])  # one halt per ticker

    def _linked(self, ticker: str, ts: int, cfg: PolicyConfig) -> bool:
        """Whether ``halt_risky_buyers`` of the window's risky buyers of ``ticker`` each share
        login infrastructure with another account (a campaign's shared devices and IPs), as
        the logins up to ``ts`` (the buy being decided) show: the accounts a campaign logs
        in after a buyer link it as well as those before."""
        linked = {account for _, account, _ in self._risky_buys.get(ticker, ())
                  if self.infra.shared_accounts(account, ts) >= 2}
        return len(linked) >= cfg.halt_risky_buyers

    def _halt(self, ticker: str, ts: int, order_id: str, x: np.ndarray,
              cfg: PolicyConfig, campaign_buy: bool = False) -> dict[str, Any]:
        buys = self._risky_buys.get(ticker, ())
        risky_buyers, risky_share = int(x[_COL["risky_buyers_window"]]), float(
            x[_COL["risky_buy_share"]])
        reason = (f"{risky_buyers} risky accounts bought within {cfg.window_s:g}s "
                  f"({risky_share:.0%} of buy value)")
        if campaign_buy and risky_buyers < cfg.halt_risky_buyers:
            reason = ("a caught account linked to others by shared login infrastructure "
                      "bought a thin ticker (campaign buy)")
        expires_at = ts + int(cfg.halt_ttl_s * 1000)
        self._halts[ticker] = (ts, expires_at)
        return TickerControl(
            ticker=ticker,
            action="halt_buys",
            reason=reason,
            evidence={
                "accounts": sorted({a for _, a, _ in buys}),
                "risky_notional": round(sum(n for _, _, n in buys), 2),
                "risky_buyers": risky_buyers,
                "risky_buy_share": round(risky_share, 4),
                "distinct_buyers": int(x[_COL["distinct_buyers_window"]]),
                "volume_x_adv": round(float(x[_COL["volume_x_adv"]]), 4),
                "window_s": cfg.window_s,
                "trigger_order_id": order_id,
                "campaign_buy": campaign_buy,
            },
            expires_at=expires_at,
            source="engine",
            ts=ts,
        ).record()

    def _release_expired(self, board: ControlBoard) -> list[dict[str, Any]]:
        """A release for each own halt whose expiry this side's event time has passed."""
        out = []
        for ticker, (halt_ts, expires_at) in sorted(self._halts.items()):
            if expires_at > self.watermark:
                continue
            del self._halts[ticker]
            current = board.ticker_halt(ticker, halt_ts)
            if current is None or current.get("ts") != halt_ts:
                continue  # released or replaced by someone else meanwhile
            release = TickerControl(ticker=ticker, action="release", reason="halt expired",
                                    evidence={"halt_ts": halt_ts}, expires_at=None,
                                    source="engine", ts=expires_at).record()
            board.apply_ticker(release)
            out.append(release)
        return out

    def _profiles(self, features: TickerFeatures, ts: int) -> list[dict[str, Any]]:
        tickers = sorted(self._touched)
        self._touched.clear()
        adv, last = features.profiles([features.ids.get(t) for t in tickers])
        published = np.isfinite(adv) & np.isfinite(last) & (last > 0)
        return [{"ticker": ticker, "adv_value": round(a, 2), "last_price": p, "ts": ts}
                for ticker, a, p, ok in zip(tickers, adv.tolist(), last.tolist(),
                                            published.tolist()) if ok]

    # -- snapshots ------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        return pickle.dumps({
            "format": 2,
            "features": None if self.features is None else self.features.to_bytes(),
            "accounts": self.accounts.to_bytes(),
            "profile_every_ms": self.profile_every_ms,
            "period": self._period,
            "touched": self._touched,
            "risky_buys": self._risky_buys,
            "halts": self._halts,
            "watermark": self.watermark,
        }, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_bytes(cls, blob: bytes, infra: InfrastructureWatch | None = None) -> "TickerCore":
        """Restore a snapshot written by ``to_bytes`` (our own state topic only: it is a pickle).

        The infrastructure index is shared by the worker's partitions, not in the snapshot."""
        state = pickle.loads(blob)
        if state.get("format") != 2:
            raise ValueError(f"ticker snapshot format {state.get('format')!r}, expected 2")
        restored = cls(state["profile_every_ms"], infra)
        if state["features"] is not None:
            restored.features = TickerFeatures.from_bytes(state["features"])
        restored.accounts = DenseIds.from_bytes(state["accounts"])
        restored._period, restored._touched = state["period"], state["touched"]
        restored._risky_buys, restored._halts = state["risky_buys"], state["halts"]
        restored.watermark = state["watermark"]
        return restored
