"""The engine's records read back from Kafka -> an ``Outcome`` in event time, and its latency.

Decisions carry the order's event time (``order_ts``); controls carry only the
wall-clock time the engine published them (``ts``). A control is placed in
event time by the orders it could touch:

- an account control the engine raised on an order (``source`` engine,
  ``evidence.order_id``) applies to that very order, so it takes effect at that
  order's ``order_ts``;
- any other control (a halt, a freeze from an analyst's label) takes effect at
  the earliest ``order_ts`` among the orders decided at or after its ``ts``: the
  first order it could have changed. A control published after the last
  decision takes effect at ``after_last_ts``.
- a halt ends at its ``release`` or its ``expires_at`` (wall clock, placed the
  same way), whichever comes first; past the last decision it never ended.
  ``expires_at`` is wall time, so in a replay at speed X a halt lasts X times
  longer in event time than it would live.

This is slightly generous to halts: the few milliseconds between the tickers
agent publishing a halt and the account agent applying it are not counted.

>>> decisions = [
...     {"order_id": "a", "action": "allow", "score": 0.1, "order_ts": 1_000, "ts": 50},
...     {"order_id": "b", "action": "hold", "score": 0.6, "order_ts": 2_000, "ts": 60},
...     {"order_id": "c", "action": "block", "score": 0.9, "order_ts": 3_000, "ts": 70}]
>>> halts = [{"ticker": "9999", "action": "halt_buys", "source": "engine", "ts": 55}]
>>> accounts = [{"account_id": "A", "action": "step_up", "source": "engine",
...              "evidence": {"order_id": "b"}, "ts": 60}]
>>> out = engine_outcome(decisions, halts, accounts, after_last_ts=9_000)
>>> out.halts
[Halt(ticker='9999', ts=2000, source='engine', until=None)]
>>> out.account_actions
[AccountAction(account_id='A', action='step_up', ts=2000)]
>>> latency_ms({"a": 40, "b": 50, "c": 60}, decisions)["p50"]
10.0
"""

from __future__ import annotations

import bisect
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


class _EventClock:
    """Wall-clock control time -> the earliest event time among orders decided from then on."""

    def __init__(self, decisions: list[dict[str, Any]], after_last_ts: int) -> None:
        ordered = sorted(decisions, key=lambda d: d["ts"])
        self._walls = [d["ts"] for d in ordered]
        # Suffix minima of order_ts: a later batch may hold an earlier order.
        self._earliest = list(np.minimum.accumulate(
            np.array([d["order_ts"] for d in ordered][::-1], dtype=np.int64))[::-1])
        self._after_last = after_last_ts

    def event_ts(self, wall_ts: int) -> int:
        at = self.event_ts_or_none(wall_ts)
        return self._after_last if at is None else at

    def event_ts_or_none(self, wall_ts: int | None) -> int | None:
        """None when no order was decided at or after ``wall_ts`` (or there is none)."""
        i = len(self._walls) if wall_ts is None else bisect.bisect_left(self._walls, wall_ts)
        return int(self._earliest[i]) if i < len(self._walls) else None


def engine_outcome(decisions: list[dict[str, Any]], ticker_controls: list[dict[str, Any]],
                   account_controls: list[dict[str, Any]], after_last_ts: int) -> Outcome:
    """The engine's decisions, halts and account controls, placed in event time.

    ``halts`` and ``account_actions`` keep the order of the control records.
    """
    firsts = first_decisions(decisions)
    clock = _EventClock(list(firsts.values()), after_last_ts)
    halts = _halts(ticker_controls, clock)
    actions = []
    for c in account_controls:
        if c["action"] == "release":
            continue
        trigger = (c.get("evidence") or {}).get("order_id")
        if c.get("source") == ENGINE and trigger in firsts:
            ts = firsts[trigger]["order_ts"]
        else:
            ts = clock.event_ts(c["ts"])
        actions.append(AccountAction(c["account_id"], c["action"], ts))
    return Outcome(ENGINE, {i: d["action"] for i, d in firsts.items()},
                   {i: float(d["score"]) for i, d in firsts.items()}, halts, actions)


def _halts(ticker_controls: list[dict[str, Any]], clock: _EventClock) -> list[Halt]:
    """Each halt_buys with its end: the earlier of its release and its expiry, in event time."""
    halts: list[Halt] = []
    open_halt: dict[str, int] = {}  # ticker -> index in halts of the halt still in force
    for c in ticker_controls:
        ticker = c["ticker"]
        if c["action"] == "halt_buys":
            until = clock.event_ts_or_none(c.get("expires_at"))
            open_halt[ticker] = len(halts)
            halts.append(Halt(ticker, clock.event_ts(c["ts"]), c.get("source") or ENGINE, until))
        elif ticker in open_halt:
            i = open_halt.pop(ticker)
            released = clock.event_ts_or_none(c["ts"])
            if released is not None and halts[i].in_force_after(released):
                halts[i] = dataclasses.replace(halts[i], until=released)
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
