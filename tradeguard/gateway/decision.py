"""What a gateway answers for one order: the engine's decision, a control in force, or a fallback.

Pure functions, no Kafka: the client (``tradeguard.gateway.client``) calls them
with the order, the engine's decision record if one arrived in time, and the
controls it holds. Three rules decide the answer:

- The stricter action wins (allow < hold < block). A control in force at the
  gateway (a halted ticker's buy, a frozen account, an account under step-up)
  is never loosened by an engine decision that has not seen it yet.
- With no engine decision by the deadline, the gateway's fallback mode
  decides: ``fail_open`` allows and flags the order for post-trade review,
  ``fail_closed`` holds it; the reason is ``engine_timeout``.
- Whenever the gateway's own rule set the action, ``decided_by`` is
  ``"gateway"``; it is ``"engine"`` only when the engine's action stands.

>>> order = {"order_id": "o-1", "account_id": "a-1", "ticker": "9999", "side": "buy"}
>>> fallback(order, "fail_open", 20, None, elapsed_ms=20.4).summary()
'o-1 allow decided_by=gateway fallback=fail_open review reasons=engine_timeout=20'
>>> halt = Verdict("block", ({"code": "ticker_halted", "value": 1.0},))
>>> fallback(order, "fail_open", 20, halt, elapsed_ms=20.4).summary()
'o-1 block decided_by=gateway fallback=fail_open reasons=ticker_halted=1,engine_timeout=20'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from streams.vocabulary import ACTIONS, SEVERITY
from tradeguard.core.board import ControlBoard

__all__ = ["ACTIONS", "FAIL_MODES", "GatewayDecision", "LateDisagreement", "Verdict",
           "control_answer", "control_verdict", "engine_answer", "fallback", "severity"]

FAIL_MODES = {"fail_open": "allow", "fail_closed": "hold"}
_SEVERITY = SEVERITY


def severity(action: str) -> int:
    """0 for allow, 1 for hold, 2 for block."""
    return _SEVERITY[action]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the controls in force at the gateway require of one order."""

    action: str
    reasons: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class GatewayDecision:
    """The one answer a gateway gets for an order.

    ``engine`` is the engine's decision record exactly as it arrived, every field
    kept (``score``, ``model_version``, ``policy_version``, and any added later);
    it is None when the gateway answered without it.
    """

    order_id: str
    account_id: str
    ticker: str
    side: str
    action: str
    reasons: tuple[dict[str, Any], ...]
    decided_by: str  # "engine" or "gateway"
    fallback: str | None  # "fail_open" / "fail_closed" when the deadline passed, else None
    review: bool  # allowed without the engine's verdict: review the trade afterwards
    engine: Mapping[str, Any] | None
    elapsed_ms: float

    @property
    def score(self) -> float | None:
        return None if self.engine is None else self.engine.get("score")

    @property
    def model_version(self) -> str | None:
        return None if self.engine is None else self.engine.get("model_version")

    @property
    def policy_version(self) -> str | None:
        return None if self.engine is None else self.engine.get("policy_version")

    def as_dict(self) -> dict[str, Any]:
        """A decision-shaped object for logs and audit: the engine's fields, then the gateway's."""
        out = dict(self.engine or {})
        if self.engine is not None and self.engine.get("action") != self.action:
            out["engine_action"] = self.engine.get("action")
        out.update(order_id=self.order_id, account_id=self.account_id, ticker=self.ticker,
                   side=self.side, action=self.action, reasons=list(self.reasons),
                   decided_by=self.decided_by, fallback=self.fallback, review=self.review,
                   elapsed_ms=round(self.elapsed_ms, 3))
        return out

    def summary(self) -> str:
        """One line for a log: the action, who decided and why."""
        flags = [f"decided_by={self.decided_by}"]
        if self.fallback:
            flags.append(f"fallback={self.fallback}")
        if self.review:
            flags.append("review")
        reasons = ",".join(f"{r['code']}={r['value']:g}" for r in self.reasons)
        return f"{self.order_id} {self.action} {' '.join(flags)} reasons={reasons}"


@dataclass(frozen=True, slots=True)
class LateDisagreement:
    """The engine decided an order after the gateway had answered it, and differently.

    ``engine_stricter`` (the gateway allowed or held, the engine says hold or
    block) asks the broker to cancel or review the order; otherwise the gateway
    was the stricter one (a fail-closed hold the engine would have allowed, or a
    control the engine had not seen yet).
    """

    gateway: GatewayDecision
    engine: Mapping[str, Any]

    @property
    def engine_stricter(self) -> bool:
        return severity(self.engine["action"]) > severity(self.gateway.action)


def control_verdict(board: ControlBoard, order: Mapping[str, Any], now_ms: int) -> Verdict | None:
    """The action the controls in force require of ``order``, or None when none applies.

    The same overrides the engine applies: a frozen account's order is blocked,
    an account under step-up is held, a buy of a halted ticker is blocked (a halt
    past its ``expires_at`` no longer counts).

    >>> board = ControlBoard()
    >>> board.apply_account({"account_id": "a-1", "action": "step_up", "reason": "", "ts": 0})
    'applied'
    >>> control_verdict(board, {"account_id": "a-1", "ticker": "7203", "side": "sell"}, 0)
    Verdict(action='hold', reasons=({'code': 'account_step_up', 'value': 1.0},))
    """
    action, reasons = None, []
    control = board.account_control(order["account_id"])
    if control is not None and control["action"] == "freeze":
        action, reasons = "block", [{"code": "account_frozen", "value": 1.0}]
    elif control is not None and control["action"] == "step_up":
        action, reasons = "hold", [{"code": "account_step_up", "value": 1.0}]
    if order["side"] == "buy" and board.ticker_halt(order["ticker"], now_ms) is not None:
        action = "block"
        reasons.insert(0, {"code": "ticker_halted", "value": 1.0})
    return None if action is None else Verdict(action, tuple(reasons))


def engine_answer(order: Mapping[str, Any], record: Mapping[str, Any], verdict: Verdict | None,
                  elapsed_ms: float) -> GatewayDecision:
    """The engine's decision, unless a control in force at the gateway is stricter.

    One exception: a buy the engine let through a halt (reason ``halt_exempt``: a clean
    session, the policy sparing it) is not blocked again for that halt alone.
    """
    engine_reasons = tuple(record.get("reasons") or ())
    if (verdict is not None and verdict.reasons
            and [r["code"] for r in verdict.reasons] == ["ticker_halted"]
            and any(r.get("code") == "halt_exempt" for r in engine_reasons)):
        verdict = None
    if verdict is not None and severity(verdict.action) > severity(record["action"]):
        return _decision(order, verdict.action, verdict.reasons + engine_reasons, "gateway",
                         None, record, elapsed_ms)
    return _decision(order, record["action"], engine_reasons, "engine", None, record, elapsed_ms)


def fallback(order: Mapping[str, Any], mode: str, deadline_ms: float, verdict: Verdict | None,
             elapsed_ms: float) -> GatewayDecision:
    """No engine decision by the deadline: the mode's action, or the controls' if stricter."""
    timeout = {"code": "engine_timeout", "value": float(deadline_ms)}
    action, reasons = FAIL_MODES[mode], (timeout,)
    if verdict is not None and severity(verdict.action) > severity(action):
        action, reasons = verdict.action, verdict.reasons + reasons
    return _decision(order, action, reasons, "gateway", mode, None, elapsed_ms)


def control_answer(order: Mapping[str, Any], verdict: Verdict, elapsed_ms: float
                   ) -> GatewayDecision:
    """A block from the controls alone: nothing the engine says can make it stricter."""
    return _decision(order, verdict.action, verdict.reasons, "gateway", None, None, elapsed_ms)


def _decision(order, action, reasons, decided_by, mode, record, elapsed_ms) -> GatewayDecision:
    return GatewayDecision(
        order_id=order["order_id"], account_id=order["account_id"], ticker=order["ticker"],
        side=order["side"], action=action, reasons=tuple(reasons), decided_by=decided_by,
        fallback=mode, review=action == "allow" and record is None, engine=record,
        elapsed_ms=elapsed_ms)
