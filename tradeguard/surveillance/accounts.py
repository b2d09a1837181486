"""Account surveillance: logins and orders of the accounts one worker owns -> decisions.

Pure core: records in (validated dicts), records out. The account agent hands
over a batch of decoded orders; this turns them into columnar batches, runs
the feature kernels, scores with the policy, applies the controls in force
and says which account controls to publish and what to forward to the ticker
side.
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from functools import lru_cache
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tradeguard.features.account import ACCOUNT_FEATURES, AccountFeatures
from tradeguard.features.batches import AUTH_KINDS, OTHER, AuthBatch, OrderBatch
from tradeguard.features.ids import stable_hash64
from tradeguard.models import AccountAnomaly, FraudClassifier
from tradeguard.policy.config import PolicyConfig
from tradeguard.policy.orders import ALLOW, BLOCK, HOLD, score_orders
from tradeguard.surveillance.controls import ControlBoard
from tradeguard.surveillance.infrastructure import InfrastructureWatch

__all__ = ["AccountOutcome", "AccountSurveillance", "POLICY_VERSION", "ACCOUNT_SQUASH"]

POLICY_VERSION = "policy-v1"
_NAN = float("nan")

# How the models squash each account feature into [0, 1] (see tradeguard.models.squash).
ACCOUNT_SQUASH: dict[str, str | tuple[str, float]] = {
    "secs_since_login": "seconds",
    **{name: "flag" for name in ("new_device", "new_ip", "new_asn", "new_country",
                                 "new_user_agent", "session_mismatch", "first_buy_of_ticker",
                                 "first_overseas_trade", "sudden_margin")},
    # A thin-ticker buy matters from ~1% of the ticker's daily value up.
    "thin_ticker_notional_x_adv": ("ratio", 0.02),
}


@dataclass
class AccountOutcome:
    """What one batch of orders produced."""

    decisions: list[dict[str, Any]] = field(default_factory=list)
    account_controls: list[dict[str, Any]] = field(default_factory=list)
    flows: list[dict[str, Any]] = field(default_factory=list)


class AccountSurveillance:
    """Everything a worker knows about its accounts, and the per-order decision."""

    def __init__(self, home_market: str = "JP", remember_orders: int = 50_000,
                 profiles: dict[str, tuple[float, float]] | None = None,
                 anomaly_window: int = 250, infra: InfrastructureWatch | None = None) -> None:
        self.home_market = home_market
        self.features = AccountFeatures()
        self.accounts = self.features.ids  # snapshotted with the feature state
        # Learning one order in 16 keeps River's per-sample cost (~16 us) to ~1 us
        # an order with no measurable loss of ranking (tradeguard/models/anomaly.py).
        self.anomaly = AccountAnomaly(ACCOUNT_FEATURES, ACCOUNT_SQUASH, window_size=anomaly_window,
                                      learn_every=16)
        self.classifier = FraudClassifier(ACCOUNT_FEATURES, ACCOUNT_SQUASH)
        # Feature vectors of recent orders, so a label arriving later can teach the
        # classifier what that order looked like. Bounded: oldest forgotten first.
        self.remember_orders = remember_orders
        self._recent: OrderedDict[str, tuple[str, np.ndarray]] = OrderedDict()
        # ticker -> (normal daily traded value in yen, last price), from tickers.profile;
        # one dict shared by every partition's surveillance on a worker.
        self.profiles: dict[str, tuple[float, float]] = {} if profiles is None else profiles
        # Logins of every account, not just this partition's: shared by all on a worker.
        self.infra = InfrastructureWatch() if infra is None else infra

    def learn_auth(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        self.features.learn_auth(AuthBatch.from_columns(
            account=[self.accounts.get_or_add(e["account_id"]) for e in events],
            kind=[AUTH_KINDS.get(e["event"], OTHER) for e in events],
            ts_ms=[e["ts"] for e in events],
            session=[_hash(e["session_id"]) for e in events],
            ip=[_hash(e["ip"]) for e in events],
            device=[_hash(e["device_id"]) for e in events],
            asn=[_hash(None if e["asn"] is None else str(e["asn"])) for e in events],
            country=[_hash(e["country"]) for e in events],
            user_agent=[_hash(e["user_agent"]) for e in events],
        ))

    def order_batch(self, orders: list[dict[str, Any]]) -> OrderBatch:
        """The columnar batch the feature kernels read, from validated order records."""
        profiles = [self.profiles.get(o["ticker"], (_NAN, _NAN)) for o in orders]
        return OrderBatch.from_columns(
            account=[self.accounts.get_or_add(o["account_id"]) for o in orders],
            ticker=[_ticker_key(o["ticker"]) for o in orders],
            is_buy=[o["side"] == "buy" for o in orders],
            qty=[o["qty"] for o in orders],
            # A market order has no price of its own: value it at the last trade.
            price=[o["price"] if o["price"] is not None else p[1]
                   for o, p in zip(orders, profiles)],
            margin=[o["margin"] for o in orders],
            overseas=[(o["market"] or self.home_market) != self.home_market for o in orders],
            ts_ms=[o["ts"] for o in orders],
            session=[_hash(o["session_id"]) for o in orders],
            ip=[_hash(o["ip"]) for o in orders],
            device=[_hash(o["device_id"]) for o in orders],
            user_agent=[_hash(o["user_agent"]) for o in orders],
            holdings_value=[_NAN if o["holdings_value"] is None else o["holdings_value"]
                            for o in orders],
            ticker_adv_value=[p[0] for p in profiles],
        )

    def decide(
        self,
        orders: list[dict[str, Any]],
        board: ControlBoard,
        cfg: PolicyConfig,
        now_ms: int,
    ) -> AccountOutcome:
        """Score a batch of valid orders, in order, and decide each one."""
        out = AccountOutcome()
        if not orders:
            return out
        batch = self.order_batch(orders)
        features = self.features.transform_orders(batch)
        # Prequential: each order is judged by the models as they were before it.
        anomaly, windows = self.anomaly.score_learn_many(features)
        extra = {"anomaly": anomaly,
                 "shared_infra_accounts": [self.infra.shared_accounts(o["account_id"], o["ts"])
                                           for o in orders]}
        if self.classifier.is_warm:
            extra["fraud_probability"] = self.classifier.score_many(features)
        verdicts = score_orders(features, ACCOUNT_FEATURES, cfg, extra)
        classifier_version = self.classifier.version
        self._remember(orders, features)
        notional = np.nan_to_num(batch.qty * batch.price, nan=0.0).tolist()
        scores = verdicts.scores.tolist()
        actions = verdicts.actions(cfg)
        all_reasons = verdicts.all_reasons(cfg.max_reasons)
        windows = windows.tolist()
        for i, order in enumerate(orders):
            score = scores[i]
            action = actions[i]
            reasons = all_reasons[i]
            account_id = order["account_id"]
            action, reasons = self._apply_controls(order, action, reasons, score, board, cfg,
                                                   now_ms, out)
            out.decisions.append({
                "order_id": order["order_id"],
                "account_id": account_id,
                "ticker": order["ticker"],
                "side": order["side"],
                "action": action,
                "score": round(score, 4),
                "reasons": reasons,
                "model_version": f"{POLICY_VERSION};{self.anomaly.name}-v"
                                 f"{self.anomaly.revision}/w{windows[i]};{classifier_version}",
                "order_ts": order["ts"],
                "ts": now_ms,
            })
            out.flows.append({
                "ticker": order["ticker"],
                "account_id": account_id,
                "side": order["side"],
                "order_id": order["order_id"],
                "notional": notional[i],
                "account_risk": round(score, 4),
                "ts": order["ts"],
            })
        return out

    def to_bytes(self) -> bytes:
        """Everything learned: features, both models and the remembered orders."""
        return pickle.dumps({
            "format": 1,
            "home_market": self.home_market,
            "remember_orders": self.remember_orders,
            "features": self.features.to_bytes(),
            "anomaly": self.anomaly.to_bytes(),
            "classifier": self.classifier.to_bytes(),
            "recent": list(self._recent.items()),
        }, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def from_bytes(cls, blob: bytes, profiles: dict[str, tuple[float, float]] | None = None,
                   infra: InfrastructureWatch | None = None) -> "AccountSurveillance":
        """Restore a snapshot written by ``to_bytes`` (our own state topic only: it is a pickle).

        Ticker profiles and the infrastructure index are not in the snapshot: they
        are shared by the worker's partitions and rebuilt from their topics.
        """
        state = pickle.loads(blob)
        if state.get("format") != 1:
            raise ValueError(f"account snapshot format {state.get('format')!r}, expected 1")
        restored = cls(state["home_market"], state["remember_orders"], profiles, infra=infra)
        restored.features = AccountFeatures.from_bytes(state["features"])
        restored.accounts = restored.features.ids
        restored.anomaly = AccountAnomaly.from_bytes(state["anomaly"])
        restored.classifier = FraudClassifier.from_bytes(state["classifier"])
        restored._recent = OrderedDict(state["recent"])
        return restored

    def _remember(self, orders: list[dict[str, Any]], features: np.ndarray) -> None:
        for order, row in zip(orders, features):
            self._recent[order["order_id"]] = (order["account_id"], row)
        while len(self._recent) > self.remember_orders:
            self._recent.popitem(last=False)

    def learn_feedback(self, labels: list[dict[str, Any]], board: ControlBoard,
                       now_ms: int) -> list[dict[str, Any]]:
        """Learn from analysts' labels and act on them; return the account controls to publish.

        A labelled order (or, for an account label, every remembered order of the
        account) teaches the classifier. ``legit`` on a controlled account releases
        it; ``fraud`` freezes it.
        """
        rows, ys = [], []
        for label in labels:
            if label["order_id"] is not None:
                found = self._recent.get(label["order_id"])
                matches = [found[1]] if found and found[0] == label["account_id"] else []
            else:
                matches = [r for a, r in self._recent.values() if a == label["account_id"]]
            rows += matches
            ys += [label["label"] == "fraud"] * len(matches)
        if rows:
            self.classifier.learn_many(np.array(rows), np.array(ys))
        out = []
        for label in labels:
            account_id = label["account_id"]
            control = board.account_control(account_id)
            if label["label"] == "legit" and control is not None:
                action, reason = "release", f"labelled legit by {label['source']}"
            elif label["label"] == "fraud" and (control is None or control["action"] != "freeze"):
                action, reason = "freeze", f"labelled fraud by {label['source']}"
            else:
                continue
            record = {"account_id": account_id, "action": action, "reason": reason,
                      "evidence": {"order_id": label["order_id"]}, "source": "feedback",
                      "ts": now_ms}
            board.apply_account(record)
            out.append(record)
        return out

    def _apply_controls(self, order, action, reasons, score, board, cfg, now_ms, out):
        """Controls in force override the score; a high score puts the account under control."""
        account_id = order["account_id"]
        control = board.account_control(account_id)
        wanted = ("freeze" if score >= cfg.freeze_at
                  else "step_up" if score >= cfg.step_up_at else None)
        current = control["action"] if control else None
        if wanted and _RANK[wanted] > _RANK.get(current, 0):
            record = {
                "account_id": account_id,
                "action": wanted,
                "reason": f"order {order['order_id']} scored {score:.2f}",
                "evidence": {"order_id": order["order_id"], "score": round(score, 4),
                             "reasons": reasons},
                "source": "engine",
                "ts": now_ms,
            }
            board.apply_account(record)  # later orders of this batch see it at once
            out.account_controls.append(record)
            current = wanted
        if current == "freeze":
            action = BLOCK
            reasons = [{"code": "account_frozen", "value": 1.0}] + reasons
        elif current == "step_up" and action == ALLOW:
            action = HOLD
            reasons = [{"code": "account_step_up", "value": 1.0}] + reasons
        if order["side"] == "buy" and board.ticker_halt(order["ticker"], now_ms) is not None:
            action = BLOCK
            reasons = [{"code": "ticker_halted", "value": 1.0}] + reasons
        return action, reasons[: cfg.max_reasons]


_RANK = {"step_up": 1, "freeze": 2}


@lru_cache(maxsize=1 << 17)
def _hash(value: str | None) -> int:
    """stable_hash64, memoised: sessions, IPs and devices repeat from order to order."""
    return int(stable_hash64(value))


def _ticker_key(ticker: str) -> int:
    """A ticker's key in the account Bloom filters: a stable hash, the same after a restart."""
    return _hash(ticker) >> 1  # non-negative int64
