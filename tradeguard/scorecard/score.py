"""The scorecard: an ``Outcome`` against the ground truth -> ``orders``, ``tickers``, ``accounts``.

Pure functions over plain records; no Kafka, no clock. Definitions:

- An order is *stopped* when its action is hold or block: the gateway waits for
  the decision, so a stopped order never executes. Undecided orders count as
  allowed.
- *Fraudulent* orders are the ground truth's ``fraud_orders`` (liquidation sells
  and pump buys); accomplices' orders are manipulation, not unauthorized, and are
  counted apart; every other order is *legitimate*.
- A targeted ticker's time to halt is the event time of its first ``halt_buys``
  still in force at the campaign start or later, minus the campaign start; the
  fraudulent buys to halt are its pump buys placed in between. A halt placed
  before the start gives a negative time and zero buys (``before_attack`` when
  it even predates the accomplices' pre-positioning). A halt of a targeted
  ticker that ended before its attack began is a false halt, like any halt of
  a ticker never attacked.
- A taken-over account is stopped before its first fraudulent buy when a
  step-up, freeze or refused login took effect at or before that buy's event
  time (at: the control triggered by the buy itself holds that buy).

>>> from tradeguard.simulator.truth import FraudOrder, GroundTruth
>>> truth = GroundTruth("t", 0, 0, 0, 60_000, fraud_orders=[
...     FraudOrder(f"f{i}", "A", "c", "pump", "9999", "buy", 100, 1e6, 1_000 * i)
...     for i in range(3)])
>>> orders = [{"order_id": f"f{i}", "account_id": "A", "ticker": "9999", "side": "buy",
...            "ts": 1_000 * i} for i in range(3)] + [
...           {"order_id": "ok", "account_id": "B", "ticker": "7203", "side": "buy", "ts": 5}]
>>> outcome = Outcome("x", {"f0": "allow", "f1": "hold", "f2": "block", "ok": "allow"})
>>> s = score_orders(orders, truth, outcome)
>>> s["fraud_stopped"], round(s["fraud_stopped_share"], 3), s["legit_stopped_per_10k"]
(2, 0.667, 0.0)
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from typing import Any

from tradeguard.scorecard.outcome import Outcome
from tradeguard.simulator.truth import GroundTruth, HardNegative

__all__ = ["score", "score_accounts", "score_orders", "score_tickers", "threshold_curve"]


def score(orders: list[dict[str, Any]], truth: GroundTruth, outcome: Outcome) -> dict[str, Any]:
    """The three sections of the scorecard for one detector."""
    return {"orders": score_orders(orders, truth, outcome),
            "tickers": score_tickers(orders, truth, outcome),
            "accounts": score_accounts(truth, outcome)}


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _per_10k(part: int, whole: int) -> float | None:
    return round(10_000 * part / whole, 2) if whole else None


def score_orders(orders: list[dict[str, Any]], truth: GroundTruth,
                 outcome: Outcome) -> dict[str, Any]:
    """Fraudulent orders stopped (count, yen, by phase); legitimate ones stopped per 10,000."""
    fraud = {o.order_id: o for o in truth.fraud_orders}
    accomplice = {i for a in truth.accomplices for i in a.order_ids}
    ids = [o["order_id"] for o in orders]
    fraud_ids = [i for i in ids if i in fraud]
    legit_ids = [i for i in ids if i not in fraud and i not in accomplice]
    accomplice_ids = [i for i in ids if i in accomplice]
    stopped = [i for i in fraud_ids if outcome.stopped(i)]
    yen = sum(fraud[i].notional for i in fraud_ids)
    yen_stopped = sum(fraud[i].notional for i in stopped)
    by_phase = {}
    for phase in sorted({fraud[i].phase for i in fraud_ids}):
        of_phase = [i for i in fraud_ids if fraud[i].phase == phase]
        hit = [i for i in of_phase if outcome.stopped(i)]
        by_phase[phase] = {"count": len(of_phase), "stopped": len(hit),
                           "yen": sum(fraud[i].notional for i in of_phase),
                           "yen_stopped": sum(fraud[i].notional for i in hit)}
    legit_actions = Counter(outcome.actions.get(i, "undecided") for i in legit_ids)
    by_negative = Counter(truth.negative_of(i) or "routine" for i in legit_ids
                          if outcome.stopped(i))
    return {
        "fraudulent": len(fraud_ids),
        "legitimate": len(legit_ids),
        "accomplice": len(accomplice_ids),
        "accomplice_stopped": sum(outcome.stopped(i) for i in accomplice_ids),
        "fraud_stopped": len(stopped),
        "fraud_held": sum(outcome.actions.get(i) == "hold" for i in fraud_ids),
        "fraud_blocked": sum(outcome.actions.get(i) == "block" for i in fraud_ids),
        "fraud_stopped_share": _share(len(stopped), len(fraud_ids)),
        "fraud_yen_attempted": yen,
        "fraud_yen_stopped": yen_stopped,
        "fraud_yen_stopped_share": _share(yen_stopped, yen),
        "fraud_by_phase": by_phase,
        "legit_held": legit_actions["hold"],
        "legit_blocked": legit_actions["block"],
        "legit_held_per_10k": _per_10k(legit_actions["hold"], len(legit_ids)),
        "legit_blocked_per_10k": _per_10k(legit_actions["block"], len(legit_ids)),
        "legit_stopped_per_10k": _per_10k(legit_actions["hold"] + legit_actions["block"],
                                          len(legit_ids)),
        "legit_stopped_by_negative": dict(sorted(by_negative.items())),
        "undecided": sum(i not in outcome.actions for i in ids),
    }


def score_tickers(orders: list[dict[str, Any]], truth: GroundTruth,
                  outcome: Outcome) -> dict[str, Any]:
    """Per targeted ticker: seconds and fraudulent buys from campaign start to the first halt.

    Also every halt of a ticker not under attack, with the hard negative it
    fell on when there is one.
    """
    placed = {o["order_id"] for o in orders}
    buys: dict[str, list[int]] = {}
    for o in truth.fraud_orders:
        if o.side == "buy" and o.order_id in placed:
            buys.setdefault(o.ticker, []).append(o.ts)
    halts = sorted(outcome.halts, key=lambda h: h.ts)
    attacked_from = {t.ticker: min(t.campaign_start_ts, t.preposition_start_ts or math.inf)
                     for t in truth.tickers}
    targeted = {}
    for t in sorted(truth.tickers, key=lambda t: t.campaign_start_ts):
        start, ts = t.campaign_start_ts, sorted(buys.get(t.ticker, []))
        halt = next((h for h in halts if h.ticker == t.ticker and h.in_force_after(start)), None)
        targeted[t.ticker] = {
            "campaign": t.campaign,
            "tier": t.tier,
            "campaign_start_ts": start,
            "first_fraud_buy_ts": t.first_fraud_buy_ts,
            "dump_start_ts": t.dump_start_ts,
            "halt_ts": halt.ts if halt else None,
            "halt_source": halt.source if halt else None,
            "before_attack": halt.ts < attacked_from[t.ticker] if halt else None,
            "seconds_to_halt": round((halt.ts - start) / 1000, 3) if halt else None,
            "fraud_buys_to_halt": (bisect.bisect_left(ts, halt.ts) - bisect.bisect_left(ts, start)
                                   if halt else None),
            "fraud_buys_total": len(ts),
        }
    false_halts = [{"ticker": h.ticker, "ts": h.ts, "until": h.until, "source": h.source,
                    "negative": _negative_at(truth.negatives, h.ticker, h.ts)}
                   for h in halts if h.ticker not in attacked_from
                   or not h.in_force_after(attacked_from[h.ticker])]
    halted = [v for v in targeted.values() if v["halt_ts"] is not None]
    seconds = sorted(v["seconds_to_halt"] for v in halted)
    return {
        "targeted": targeted,
        "targeted_count": len(targeted),
        "targeted_halted": len(halted),
        "median_seconds_to_halt": seconds[len(seconds) // 2] if seconds else None,
        "false_halts": false_halts,
        "false_halt_count": len(false_halts),
        "false_halted_tickers": sorted({h["ticker"] for h in false_halts}),
    }


def _negative_at(negatives: list[HardNegative], ticker: str, ts: int) -> str | None:
    """The hard negative involving ``ticker`` whose window is nearest to ``ts``, if any."""
    def distance(n: HardNegative) -> int:
        return max(n.start_ts - ts, ts - n.end_ts, 0)
    candidates = [n for n in negatives if ticker in n.tickers]
    return min(candidates, key=distance).name if candidates else None


def score_accounts(truth: GroundTruth, outcome: Outcome) -> dict[str, Any]:
    """Taken-over accounts stopped before their first fraudulent buy; false account actions."""
    first = outcome.first_account_stops()
    taken = {a.account_id: a for a in truth.accounts}
    accomplices = {a.account_id for a in truth.accomplices}
    buyers = [a for a in taken.values() if a.first_fraud_buy_ts is not None]
    traded = [a for a in taken.values() if a.first_fraud_ts is not None]

    def before(a, ts):
        return a.account_id in first and first[a.account_id].ts <= ts

    before_buy = [a for a in buyers if before(a, a.first_fraud_buy_ts)]
    before_any = [a for a in traded if before(a, a.first_fraud_ts)]
    false = [first[i] for i in sorted(first) if i not in taken and i not in accomplices]
    negative_of = {i: n.name for n in truth.negatives for i in n.accounts}
    return {
        "taken_over": len(taken),
        "with_fraud_buys": len(buyers),
        "stopped_before_first_fraud_buy": len(before_buy),
        "stopped_before_first_fraud_buy_share": _share(len(before_buy), len(buyers)),
        "stopped_before_first_fraud_order": len(before_any),
        "stopped_before_first_fraud_order_share": _share(len(before_any), len(traded)),
        "taken_over_stopped_ever": sum(i in first for i in taken),
        "accomplices_stopped": sum(i in first for i in accomplices),
        "false_account_actions": len(false),
        "false_account_actions_by_kind": dict(Counter(a.action for a in false)),
        "false_account_actions_by_negative": dict(sorted(Counter(
            negative_of.get(a.account_id, "routine") for a in false).items())),
    }


def threshold_curve(scores: dict[str, float], orders: list[dict[str, Any]], truth: GroundTruth,
                    thresholds: int = 20) -> list[dict[str, float | None]]:
    """Precision and recall of "score >= threshold" for fraud, over legitimate and fraud orders.

    >>> from tradeguard.simulator.truth import FraudOrder, GroundTruth
    >>> truth = GroundTruth("t", 0, 0, 0, 1, fraud_orders=[
    ...     FraudOrder("f", "A", "c", "pump", "9", "buy", 1, 1.0, 0)])
    >>> orders = [{"order_id": "f"}, {"order_id": "ok"}]
    >>> for point in threshold_curve({"f": 0.9, "ok": 0.3}, orders, truth, thresholds=2):
    ...     print(point)
    {'threshold': 0.0, 'precision': 0.5, 'recall': 1.0}
    {'threshold': 0.5, 'precision': 1.0, 'recall': 1.0}
    """
    fraud = truth.fraud_order_ids
    accomplice = {i for a in truth.accomplices for i in a.order_ids}
    scored = [(scores[o["order_id"]], o["order_id"] in fraud) for o in orders
              if o["order_id"] in scores and o["order_id"] not in accomplice]
    positives = sum(f for _, f in scored)
    out = []
    for k in range(thresholds):
        t = k / thresholds
        flagged = [f for s, f in scored if s >= t]
        hits = sum(flagged)
        out.append({"threshold": round(t, 4), "precision": _share(hits, len(flagged)),
                    "recall": _share(hits, positives)})
    return out
