"""What the engine is measured against, run in-process on the very same session.

- ``no_engine``: nothing is ever stopped; the floor every number starts from.
- ``static_rules``: a broker of 2025. It halts buys of a ticker by hand
  ``halt_delay_min`` minutes after the pump is *reported*, which we take to be
  its ``report_after_fraud_buys``-th fraudulent buy (victims and the exchange
  notice; the report itself comes from outside our streams, so the ground truth
  stands in for it). Its only account defence is MFA: a login from a device the
  account never logged in from is refused for a ``mfa_block_share`` of the
  accounts enrolled in MFA (device-bound logins that a relayed one-time code
  cannot pass; the rest accept the relayed code). Enrolment is read from the
  stream (the account has ``mfa_challenge_passed`` events); which accounts are
  device-bound is a stable hash of the account id. A refused login refuses every
  order of its session, attacker's or customer's alike; AiTM, which rides the
  customer's own session, is never refused.
- ``river_anomaly``: the engine's unsupervised account model on its own.
  ``AccountFeatures`` are computed from the auth events and orders in event
  order (ticker profiles from ``market.trades`` as the engine learns them), one
  ``AccountAnomaly`` (the engine's, as ``AccountCore`` configures it)
  scores each order before learning it, and an order at or above ``threshold``
  is held. Each order is judged alone; the account counts as stepped up at its
  first held order (a challenge an attacker cannot answer), but its later
  orders are not held for it. No ticker halts: the model sees accounts, not
  tickers. The model scores 0 until its first reference window is learned, so
  on a short session it stops nothing.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from itertools import groupby

from streams.topics import AUTH_EVENTS, MARKET_TRADES, ORDERS, REFERENCE_TICKERS
from tradeguard.policy.config import PolicyConfig
from tradeguard.scorecard.outcome import AccountAction, Halt, Outcome, session_orders
from tradeguard.runtime.settings import Settings
from tradeguard.simulator.generate import Session
from tradeguard.core import ControlBoard, FlowBlock, typed
from tradeguard.core.accounts import AccountCore, _runs
from tradeguard.core.tickers import TickerCore

_NO_BOARD = ControlBoard()  # the baseline halts nothing: an empty board for the ticker side

__all__ = ["RiverRules", "StaticRules", "anomaly_scores", "no_engine", "river_anomaly",
           "run_baselines", "static_rules"]


@dataclass(frozen=True)
class StaticRules:
    """Assumptions of the 2025-style baseline (see the module docstring)."""

    report_after_fraud_buys: int = 5
    halt_delay_min: float = 30.0
    mfa_block_share: float = 0.5

    def describe(self) -> str:
        return (f"manual buy halt {self.halt_delay_min:g} min after a ticker's "
                f"{self.report_after_fraud_buys}th fraudulent buy; new-device logins refused "
                f"for {self.mfa_block_share:.0%} of MFA-enrolled accounts")


@dataclass(frozen=True)
class RiverRules:
    """The anomaly-only baseline: hold at or above ``threshold``; the engine's window size."""

    threshold: float = 0.9
    window: int = Settings().anomaly_window

    def describe(self) -> str:
        return (f"AccountAnomaly (HalfSpaceTrees, window {self.window}) alone; hold each order "
                f"scoring >= {self.threshold:g}")


def no_engine(session: Session) -> Outcome:
    """Everything allowed."""
    return Outcome("no_engine", {o["order_id"]: "allow"
                                 for o in session_orders(session.records, session.open_ms)})


def _device_bound(account_id: str, share: float) -> bool:
    return zlib.crc32(account_id.encode()) % 10_000 < share * 10_000


def static_rules(session: Session, rules: StaticRules = StaticRules()) -> Outcome:
    """Manual halts after reports, and MFA-only login defence."""
    truth = session.truth
    halts = []
    for t in truth.tickers:
        buys = sorted(o.ts for o in truth.fraud_orders if o.ticker == t.ticker and o.side == "buy")
        if len(buys) >= rules.report_after_fraud_buys:
            reported = buys[rules.report_after_fraud_buys - 1]
            halts.append(Halt(t.ticker, reported + int(rules.halt_delay_min * 60_000), "manual"))
    halt_at = {h.ticker: h.ts for h in halts}
    enrolled = {r["account_id"] for t, r in session.records
                if t == AUTH_EVENTS and r["event"] == "mfa_challenge_passed"}
    devices: dict[str, set[str]] = {}
    refused: set[str] = set()
    blocked_logins = []
    actions = {}
    for name, r in session.records:
        if name == AUTH_EVENTS and r["event"] == "login_success":
            account = r["account_id"]
            known = devices.setdefault(account, set())
            if (r["ts"] >= session.open_ms and known and r["device_id"] not in known
                    and account in enrolled and _device_bound(account, rules.mfa_block_share)):
                refused.add(r["session_id"])
                blocked_logins.append(AccountAction(account, "block_login", r["ts"]))
            else:
                known.add(r["device_id"])
        elif name == ORDERS and r["ts"] >= session.open_ms:
            halted = r["side"] == "buy" and r["ts"] >= halt_at.get(r["ticker"], float("inf"))
            actions[r["order_id"]] = ("block" if halted or r["session_id"] in refused
                                      else "allow")
    return Outcome("static_rules_2025", actions, {}, halts, blocked_logins)


def anomaly_scores(session: Session, window: int = Settings().anomaly_window) -> dict[str, float]:
    """AccountAnomaly's prequential score of every session order, features computed in-process.

    The engine's own feature plumbing (``AccountCore``: columns and the merged
    login/order kernel), without its policy; ticker profiles from ``market.trades``
    as the engine learns them, and before any, from ``reference.tickers``.
    """
    accounts, tickers, cfg = AccountCore(anomaly_window=window), TickerCore(), PolicyConfig.defaults()
    scores: dict[str, float] = {}
    for name, run in groupby(session.records, key=lambda tr: tr[0]):
        records = [typed(name, r) for _, r in run]
        if name == REFERENCE_TICKERS:
            accounts.profiles.apply_reference(records)
        elif name == MARKET_TRADES:
            out = tickers.process(records, FlowBlock.empty(), _NO_BOARD, cfg)
            for p in out.profiles + tickers.close_periods(records[-1].ts):
                accounts.profiles.apply(p["ticker"], p["ts"], p["adv_value"], p["last_price"])
        elif name in (AUTH_EVENTS, ORDERS):
            auth, orders = (records, []) if name == AUTH_EVENTS else ([], records)
            batch = accounts.order_batch(orders)
            features = accounts.features.process(
                accounts.auth_batch(auth), batch, _runs([a.ts for a in auth], [o.ts for o in orders]))
            if orders:
                model_scores, _ = accounts.anomaly.score_learn_many(features)
                scores.update((o.order_id, float(s)) for o, s in zip(orders, model_scores)
                              if o.ts >= session.open_ms)
    return scores


def river_anomaly(session: Session, rules: RiverRules = RiverRules(),
                  scores: dict[str, float] | None = None) -> Outcome:
    """Hold what the anomaly model scores at or above the threshold."""
    scores = anomaly_scores(session, rules.window) if scores is None else scores
    stepped_up: dict[str, AccountAction] = {}
    actions = {}
    for o in session_orders(session.records, session.open_ms):
        held = scores[o["order_id"]] >= rules.threshold
        if held:
            action = AccountAction(o["account_id"], "step_up", o["ts"])
            stepped_up.setdefault(o["account_id"], action)
        actions[o["order_id"]] = "hold" if held else "allow"
    return Outcome("river_anomaly", actions, scores, [], list(stepped_up.values()))


def run_baselines(session: Session, static: StaticRules = StaticRules(),
                  river: RiverRules = RiverRules()) -> dict[str, tuple[Outcome, str]]:
    """Every baseline's outcome on ``session``, with its assumptions in words."""
    anomaly = river_anomaly(session, river)
    warm = sum(s > 0 for s in anomaly.scores.values())
    return {
        "no_engine": (no_engine(session), "nothing is stopped"),
        "static_rules_2025": (static_rules(session, static), static.describe()),
        "river_anomaly": (anomaly, f"{river.describe()}; {warm} of {len(anomaly.scores)} "
                                   "session orders scored above 0 (it scores 0 until its "
                                   "first window is learned)"),
    }
