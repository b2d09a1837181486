"""The engine's records read back from Kafka -> an ``Outcome`` in event time, and its latency.

Decisions carry the order's event time (``order_ts``) and the wall-clock time
they were published (``ts``, for latency). Controls carry event time: the
decision core stamps a halt with the ``ts`` of the order flow that triggered
it and its ``expires_at`` in event time, an account control with the ``ts`` of
the order or label behind it, and the board enforces them in event time. So a
control is placed at its own ``ts``:

- an account control the engine raised on an order (``source`` engine,
  ``evidence.order_id``) applies to that very order: it takes effect at that
  order's ``order_ts``;
- a halt is in force from its ``ts`` until the earlier of its ``release`` and
  its ``expires_at``;
- an account ``release`` (a step-up passed, a label, a hand) ends the account's
  control at its own ``ts``: it is kept among the account actions, so the
  scorecard knows when an account was no longer stopped.

>>> decisions = [
...     {"order_id": "a", "action": "allow", "score": 0.1, "order_ts": 1_000, "ts": 50},
...     {"order_id": "b", "action": "hold", "score": 0.6, "order_ts": 2_000, "ts": 60},
...     {"order_id": "c", "action": "block", "score": 0.9, "order_ts": 3_000, "ts": 70}]
>>> halts = [{"ticker": "9999", "action": "halt_buys", "source": "engine", "ts": 1_500,
...           "expires_at": 9_500}]
>>> accounts = [{"account_id": "A", "action": "step_up", "source": "engine",
...              "evidence": {"order_id": "b"}, "ts": 2_000}]
>>> out = engine_outcome(decisions, halts, accounts)
>>> out.halts
[Halt(ticker='9999', ts=1500, source='engine', until=9500)]
>>> out.account_actions
[AccountAction(account_id='A', action='step_up', ts=2000)]
>>> latency_ms({"a": 40, "b": 50, "c": 60}, decisions)["p50"]
10.0
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from tradeguard.scorecard.outcome import AccountAction, Halt, Outcome

__all__ = ["ENGINE", "engine_outcome", "first_decisions", "latency_ms"]

ENGINE = "engine"


def first_decisions(decisions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One decision per order: the first, as a gateway de-duplicating on order_id keeps it."""
    out: dict[str, dict[str, Any]] = {}
    for d in decisions:
        out.setdefault(d["order_id"], d)
    return out


def engine_outcome(decisions: list[dict[str, Any]], ticker_controls: list[dict[str, Any]],
                   account_controls: list[dict[str, Any]]) -> Outcome:
    """The engine's decisions, halts and account controls, in event time.

    ``halts`` and ``account_actions`` keep the order of the control records.
    """
    firsts = first_decisions(decisions)
    actions = []
    for c in account_controls:
        trigger = (c.get("evidence") or {}).get("order_id")
        ts = firsts[trigger]["order_ts"] if c.get("source") == ENGINE and trigger in firsts \
            else c["ts"]
        actions.append(AccountAction(c["account_id"], c["action"], ts))
    return Outcome(ENGINE, {i: d["action"] for i, d in firsts.items()},
                   {i: float(d["score"]) for i, d in firsts.items()},
                   _halts(ticker_controls), actions)


def _halts(ticker_controls: list[dict[str, Any]]) -> list[Halt]:
    """Each halt_buys with its end: the earlier of its release and its expiry."""
    halts: list[Halt] = []
    open_halt: dict[str, int] = {}  # ticker -> index in halts of the halt still in force
    for c in ticker_controls:
        ticker = c["ticker"]
        if c["action"] == "halt_buys":
            open_halt[ticker] = len(halts)
            halts.append(Halt(ticker, c["ts"], c.get("source") or ENGINE, c.get("expires_at")))
        elif ticker in open_halt:
            i = open_halt.pop(ticker)
            if halts[i].in_force_after(c["ts"]):
                halts[i] = dataclasses.replace(halts[i], until=max(c["ts"], halts[i].ts))
    return halts


def latency_ms(produced_at: dict[str, float], decisions: list[dict[str, Any]]) -> dict[str, Any]:
    """Order-to-decision milliseconds: decision ``ts`` minus the wall time the order was sent."""
    firsts = first_decisions(decisions)
    lags = np.array([firsts[i]["ts"] - t for i, t in produced_at.items() if i in firsts],
                    dtype=np.float64)
    if not len(lags):
        return {"orders": 0, "p50": None, "p99": None, "max": None, "mean": None}
    return {"orders": int(len(lags)),
            "p50": round(float(np.percentile(lags, 50)), 1),
            "p99": round(float(np.percentile(lags, 99)), 1),
            "max": round(float(lags.max()), 1),
            "mean": round(float(lags.mean()), 1)}
