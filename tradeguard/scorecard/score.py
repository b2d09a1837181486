"""The scorecard: an ``Outcome`` against the ground truth -> ``orders``, ``tickers``, ``accounts``.

Pure functions over plain records; no Kafka, no clock. Definitions:

- An order is *stopped* when its action is hold or block: the gateway waits for
  the decision, so a stopped order never executes. Undecided orders count as
  allowed.
- *Fraudulent* orders are the ground truth's ``fraud_orders`` (liquidation sells
  and pump buys); accomplices' orders are manipulation, not unauthorized, and are
  counted apart; every other order is *legitimate*.
- A targeted ticker is caught by its first ``halt_buys`` issued at or after
  the campaign start: its time to halt is that halt's event time minus the
  campaign start (``seconds_to_halt``) and minus the first fraudulent buy
  (``seconds_first_fraud_buy_to_halt``, negative when it came before any); the
  fraudulent buys to halt are the pump buys placed before it. A halt issued
  earlier is no catch, even if still in force when the campaign starts
  (``before_attack`` says one was): a halt issued before the attack began (the
  accomplices' pre-positioning or the campaign start, whichever came first) is
  a false halt, like any halt of a ticker never attacked; one issued during
  the pre-positioning is listed apart (``preposition_halt_ts``).
- ``halted_before_third_account_buy``: the catch came at or before the first
  buy of the third distinct hijacked account that bought the ticker (a buy at
  the halt's instant is after it, and refused). Where fewer than three hijacked
  accounts bought it, at or before the first buy of the last of them; true
  where none bought it.
- A taken-over account is stopped before its first fraudulent buy when a
  step-up, freeze or refused login took effect at or before that buy's event
  time (at: the control triggered by the buy itself holds that buy) and no
  release ended it in between (a step-up the customer passed days before does
  not stop the attacker).
- False account actions: accounts neither taken over nor an accomplice's that
  were stepped up, frozen or refused a login during the session (the warm-up's
  are counted apart, ``false_account_actions_in_warmup``); per 1,000 active
  accounts, the accounts that placed at least one session order.
- ``legit_stop_curve``: legitimate orders stopped per 10,000, per hour of the
  session (by the order's event time), to see whether labels, once they come,
  make it fall.

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

from tradeguard.scorecard.outcome import ACCOUNT_STOPS, Outcome
from tradeguard.simulator.truth import GroundTruth, HardNegative

__all__ = ["score", "score_accounts", "score_orders", "score_tickers", "threshold_curve"]


def score(orders: list[dict[str, Any]], truth: GroundTruth, outcome: Outcome,
          first_label_ts: int | None = None) -> dict[str, Any]:
    """The three sections of the scorecard for one detector.

    ``first_label_ts``: event time of the first analyst label the detector was
    fed, if any (for ``legit_stop_curve``).
    """
    return {"orders": score_orders(orders, truth, outcome, first_label_ts),
            "tickers": score_tickers(orders, truth, outcome),
            "accounts": score_accounts(truth, outcome, orders)}


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float] | None:
    """The 95% Wilson score interval of a proportion k/n, or None when n is 0.

    Wilson, not the normal approximation: at 0 or 1 stop in 10,000 the normal interval
    collapses to a point or goes negative, and those are exactly the rates reported.

    >>> [round(x * 1e4, 2) for x in wilson(0, 10_000)]
    [0.0, 3.84]
    >>> [round(x * 1e4, 2) for x in wilson(5, 100_000)]
    [0.21, 1.17]
    """
    if k < 0 or n < 0 or k > n:
        raise ValueError(f"wilson: need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return None
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # At 0 (or n) stops the bound is exactly 0 (or 1); the formula leaves rounding dust.
    return (0.0 if k == 0 else max(0.0, centre - half)), (1.0 if k == n else min(1.0, centre + half))


def _per_10k_interval(k: int, n: int) -> list[float] | None:
    """``wilson`` as per-10k figures, rounded like the rates."""
    interval = wilson(k, n)
    return None if interval is None else [round(x * 10_000, 2) for x in interval]


def _per_10k(part: int, whole: int) -> float | None:
    return round(10_000 * part / whole, 2) if whole else None


def score_orders(orders: list[dict[str, Any]], truth: GroundTruth, outcome: Outcome,
                 first_label_ts: int | None = None) -> dict[str, Any]:
    """Fraudulent orders stopped (count, yen, by phase); legitimate ones stopped per 10,000."""
    fraud = {o.order_id: o for o in truth.fraud_orders}
    accomplice = {i for a in truth.accomplices for i in a.order_ids}
    ids = [o["order_id"] for o in orders]
    fraud_ids = [i for i in ids if i in fraud]
    legit_ids = [i for i in ids if i not in fraud and i not in accomplice]
    accomplice_ids = [i for i in ids if i in accomplice]
    hijacked = {a.account_id for a in truth.accounts}
    account_of = {o["order_id"]: o.get("account_id") for o in orders}
    on_hijacked = {i for i in legit_ids if account_of[i] in hijacked}
    clean = len(legit_ids) - len(on_hijacked)
    clean_stopped = sum(outcome.stopped(i) for i in legit_ids if i not in on_hijacked)
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
        # The owners' own orders on accounts an attacker took over: stopped because the
        # account really is compromised (frozen after its takeover), not a false alarm.
        # The clean-account rate leaves them out, for the customers nobody attacked.
        "legit_on_hijacked_accounts": len(on_hijacked),
        "legit_stopped_on_hijacked_accounts": sum(outcome.stopped(i) for i in on_hijacked),
        "legit_stopped_per_10k_clean_accounts": _per_10k(clean_stopped, clean),
        # The counts behind it and its 95% interval (Wilson): one order in 1,000 moves the
        # rate by 10, so a rate alone says nothing of what the sample can resolve.
        "legit_clean_accounts": clean,
        "legit_stopped_clean_accounts": clean_stopped,
        "legit_stopped_per_10k_clean_accounts_ci95": _per_10k_interval(clean_stopped, clean),
        "undecided": sum(i not in outcome.actions for i in ids),
        **legit_stop_curve(orders, truth, outcome, first_label_ts),
    }


HOUR_MS = 3_600_000


def legit_stop_curve(orders: list[dict[str, Any]], truth: GroundTruth, outcome: Outcome,
                     first_label_ts: int | None = None) -> dict[str, Any]:
    """Legitimate orders stopped per 10,000 in each hour of the session, and whether labels help.

    ``legit_curve_never_rises_after_labels`` compares every hour that starts at
    or after the first label with the hour before it: true when none of them
    stops a larger share of legitimate orders; null with no labels or no such
    hour.

    >>> from tradeguard.simulator.truth import GroundTruth
    >>> truth = GroundTruth("t", 0, 0, 0, 3 * HOUR_MS)
    >>> orders = [{"order_id": f"o{i}", "ts": i * HOUR_MS // 4} for i in range(12)]
    >>> held = Outcome("x", {"o0": "hold", "o1": "hold", "o5": "hold", "o9": "block"})
    >>> c = legit_stop_curve(orders, truth, held, first_label_ts=HOUR_MS)
    >>> [(b["hour"], b["legitimate"], b["stopped"]) for b in c["legit_stop_curve"]]
    [(0, 4, 2), (1, 4, 1), (2, 4, 1)]
    >>> c["legit_curve_never_rises_after_labels"]
    True
    """
    fraud = truth.fraud_order_ids
    accomplice = {i for a in truth.accomplices for i in a.order_ids}
    hours = max(1, math.ceil((truth.close_ts - truth.open_ts) / HOUR_MS))
    counts = [[0, 0] for _ in range(hours)]
    for o in orders:
        if o["order_id"] in fraud or o["order_id"] in accomplice:
            continue
        h = min(max((o["ts"] - truth.open_ts) // HOUR_MS, 0), hours - 1)
        counts[h][0] += 1
        counts[h][1] += outcome.stopped(o["order_id"])
    curve = [{"hour": h, "start_ts": truth.open_ts + h * HOUR_MS, "legitimate": n,
              "stopped": k, "stopped_per_10k": _per_10k(k, n)} for h, (n, k) in enumerate(counts)]
    rises = None
    if first_label_ts is not None:
        after = [h for h in range(1, hours) if curve[h]["start_ts"] >= first_label_ts]
        rates = [c["stopped_per_10k"] or 0.0 for c in curve]
        rises = [h for h in after if rates[h] > rates[h - 1]] if after else None
    return {"legit_stop_curve": curve, "first_label_ts": first_label_ts,
            "legit_curve_never_rises_after_labels": None if rises is None else not rises}


def score_tickers(orders: list[dict[str, Any]], truth: GroundTruth,
                  outcome: Outcome) -> dict[str, Any]:
    """Per targeted ticker: the halt that caught it, how soon, and after how many buys.

    Also every false halt (see the module docstring), with the hard negative it
    fell on when there is one.
    """
    placed = {o["order_id"] for o in orders}
    buys: dict[str, list[int]] = {}
    account_buys: dict[str, dict[str, int]] = {}  # ticker -> account -> its first buy
    for o in truth.fraud_orders:
        if o.side == "buy" and o.order_id in placed:
            buys.setdefault(o.ticker, []).append(o.ts)
            first = account_buys.setdefault(o.ticker, {})
            first[o.account_id] = min(first.get(o.account_id, o.ts), o.ts)
    halts = sorted(outcome.halts, key=lambda h: h.ts)
    attacked_from = {t.ticker: min(t.campaign_start_ts, t.preposition_start_ts or math.inf)
                     for t in truth.tickers}
    targeted = {}
    for t in sorted(truth.tickers, key=lambda t: t.campaign_start_ts):
        start, ts = t.campaign_start_ts, sorted(buys.get(t.ticker, []))
        mine = [h for h in halts if h.ticker == t.ticker]
        halt = next((h for h in mine if h.ts >= start), None)
        early = next((h for h in mine if attacked_from[t.ticker] <= h.ts < start), None)
        targeted[t.ticker] = {
            "campaign": t.campaign,
            "tier": t.tier,
            "campaign_start_ts": start,
            "first_fraud_buy_ts": t.first_fraud_buy_ts,
            "dump_start_ts": t.dump_start_ts,
            "halt_ts": halt.ts if halt else None,
            "halt_source": halt.source if halt else None,
            "before_attack": any(h.ts < start and h.in_force_after(start) for h in mine),
            "preposition_halt_ts": early.ts if early else None,
            "seconds_to_halt": round((halt.ts - start) / 1000, 3) if halt else None,
            "seconds_first_fraud_buy_to_halt": (round((halt.ts - ts[0]) / 1000, 3)
                                                if halt and ts else None),
            "fraud_buys_to_halt": (bisect.bisect_left(ts, halt.ts) - bisect.bisect_left(ts, start)
                                   if halt else None),
            "fraud_buys_total": len(ts),
            "hijacked_buyers": len(account_buys.get(t.ticker, {})),
            "halted_before_third_account_buy": _before_third_buyer(
                halt.ts if halt else None, account_buys.get(t.ticker, {})),
        }
    false_halts = [{"ticker": h.ticker, "ts": h.ts, "until": h.until, "source": h.source,
                    "negative": _negative_at(truth.negatives, h.ticker, h.ts)}
                   for h in halts if h.ticker not in attacked_from
                   or h.ts < attacked_from[h.ticker]]
    halted = [v for v in targeted.values() if v["halt_ts"] is not None]
    seconds = sorted(v["seconds_to_halt"] for v in halted)
    return {
        "targeted": targeted,
        "targeted_count": len(targeted),
        "targeted_halted": len(halted),
        "targeted_halted_before_third_account_buy": sum(
            v["halted_before_third_account_buy"] for v in targeted.values()),
        "median_seconds_to_halt": seconds[len(seconds) // 2] if seconds else None,
        "false_halts": false_halts,
        "false_halt_count": len(false_halts),
        "false_halted_tickers": sorted({h["ticker"] for h in false_halts}),
    }


def _before_third_buyer(halt_ts: int | None, first_buys: dict[str, int]) -> bool:
    """Halted at or before the first buy of the third hijacked buyer (or of the last, if fewer).

    >>> buyers = {"A": 10, "B": 20, "C": 30, "D": 40}
    >>> _before_third_buyer(30, buyers), _before_third_buyer(31, buyers)
    (True, False)
    >>> _before_third_buyer(20, {"A": 10, "B": 20}), _before_third_buyer(None, {"A": 10})
    (True, False)
    >>> _before_third_buyer(None, {})
    True
    """
    if not first_buys:
        return True
    firsts = sorted(first_buys.values())
    return halt_ts is not None and halt_ts <= firsts[min(2, len(firsts) - 1)]


def _negative_at(negatives: list[HardNegative], ticker: str, ts: int) -> str | None:
    """The hard negative involving ``ticker`` whose window is nearest to ``ts``, if any."""
    def distance(n: HardNegative) -> int:
        return max(n.start_ts - ts, ts - n.end_ts, 0)
    candidates = [n for n in negatives if ticker in n.tickers]
    return min(candidates, key=distance).name if candidates else None


def score_accounts(truth: GroundTruth, outcome: Outcome,
                   orders: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Taken-over accounts stopped before their first fraudulent buy; false account actions.

    With the session's ``orders``, false account actions per 1,000 active accounts too.
    """
    first = outcome.first_account_stops()
    timeline: dict[str, list[Any]] = {}
    for action in sorted(outcome.account_actions, key=lambda a: a.ts):  # stable at equal ts
        timeline.setdefault(action.account_id, []).append(action)
    taken = {a.account_id: a for a in truth.accounts}
    accomplices = {a.account_id for a in truth.accomplices}
    buyers = [a for a in taken.values() if a.first_fraud_buy_ts is not None]
    traded = [a for a in taken.values() if a.first_fraud_ts is not None]

    def before(a, ts):
        """Under a stop at ``ts``: the account's latest action at or before it is a stop."""
        latest = [x for x in timeline.get(a.account_id, []) if x.ts <= ts]
        return bool(latest) and latest[-1].action in ACCOUNT_STOPS

    before_buy = [a for a in buyers if before(a, a.first_fraud_buy_ts)]
    before_any = [a for a in traded if before(a, a.first_fraud_ts)]
    honest = [i for i in sorted(timeline) if i not in taken and i not in accomplices]
    in_session = [next((x for x in timeline[i] if x.ts >= truth.open_ts
                        and x.action in ACCOUNT_STOPS), None) for i in honest]
    false = [x for x in in_session if x is not None]
    warmup = [i for i in honest if any(x.ts < truth.open_ts and x.action in ACCOUNT_STOPS
                                       for x in timeline[i])]
    negative_of = {i: n.name for n in truth.negatives for i in n.accounts}
    active = len({o["account_id"] for o in orders}) if orders is not None else None
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
        "false_account_actions_in_warmup": len(warmup),
        "active_accounts": active,
        "false_account_actions_per_1k_active": (round(1_000 * len(false) / active, 3)
                                                if active else None),
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
