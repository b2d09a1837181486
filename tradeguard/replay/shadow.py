"""``tradeguard replay --compare-shadow``: the live decisions against the shadow policy's.

A worker started with ``TRADEGUARD_SHADOW_POLICY_FILE`` decides every order a
second time under the candidate policy, from the same features and model scores,
and publishes that to ``decisions.shadow`` (never enforced). This reads both
topics for a range of order times, pairs them on ``order_id`` and summarises
them as a replay does: actions changed per reason, labelled fraud and
legitimate orders stopped by each, both sides' policy and model versions, and
the orders one side has and the other lacks.

Unlike a replay it runs nothing: the shadow saw exactly the live features, but
raised no control, so a halt or step-up the candidate would have raised and the
orders it would then have stopped are not in it (a replay has them).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import Any

from streams.topics import DECISIONS, DECISIONS_SHADOW, FEEDBACK, ORDERS
from tradeguard.replay.compare import DecisionComparison, Decided, Evidence, order_labels
from tradeguard.replay.recorded import RecordedTopics, SourceReader
from tradeguard.replay.window import ReplayWindow, format_ms
from tradeguard.runtime.settings import Settings

__all__ = ["compare_shadow"]


def compare_shadow(settings: Settings, window: ReplayWindow) -> dict[str, Any]:
    """The comparison of ``decisions`` and ``decisions.shadow`` for orders in the range."""
    started = time.monotonic()
    lead_ms = int(settings.max_event_lead_s * 1000)
    topics = RecordedTopics(settings)
    try:
        since = window.start_ms - lead_ms
        starts = {(name, p): o for name in (DECISIONS, DECISIONS_SHADOW)
                  for p, o in topics.starts(name, since).items()}
        labels_from = {(FEEDBACK, p): o for p, o in topics.starts(FEEDBACK, since).items()}
        order_starts = {(ORDERS, p): o for p, o in topics.starts(ORDERS, since).items()}
    finally:
        topics.close()
    sides: dict[str, dict[str, list[Decided]]] = {DECISIONS: defaultdict(list),
                                                   DECISIONS_SHADOW: defaultdict(list)}
    read = SourceReader(settings, starts, stop_ms=window.read_until_ms,
                        event_ts=lambda d: d.order_ts)
    for (name, _), chunk in read.read_all().items():
        for r in chunk.records:
            if window.in_range(r.order_ts):
                sides[name][r.order_id].append(Decided.from_record(r))
    labels = order_labels(r for c in SourceReader(settings, labels_from).read_all().values()
                          for r in c.records)
    notional = _notional(settings, order_starts, window, set(labels)) if labels else {}
    live = {oid: sorted(ds, key=lambda d: d.decided_ms or 0)
            for oid, ds in sides[DECISIONS].items()}
    comparison = DecisionComparison(live, ("live", "shadow"), labels, window.start_ms,
                                    candidate=True)
    for oid, ds in sorted(sides[DECISIONS_SHADOW].items(),
                          key=lambda kv: kv[1][0].order_ts):
        comparison.add(ds[0], notional.get(oid, 0.0))  # the one written with the live one
    result = comparison.finish(Evidence())
    return {
        "tool": "tradeguard replay --compare-shadow",
        "window": window.describe(),
        "broker": settings.bootstrap_servers,
        "topic_prefix": settings.topic_prefix,
        "versions": {("live" if n == DECISIONS else "shadow"): _versions(side)
                     for n, side in sides.items()},
        "records": {("live" if n == DECISIONS else "shadow"): {
            "decisions": sum(len(ds) for ds in side.values()), "orders": len(side),
            "orders_decided_more_than_once": sum(1 for ds in side.values() if len(ds) > 1)}
            for n, side in sides.items()},
        "undecodable": dict(read.bad),
        "labels": {"orders_labelled": len(labels),
                   "fraud": sum(1 for v in labels.values() if v == "fraud"),
                   "legit": sum(1 for v in labels.values() if v == "legit")},
        "comparison": result,
        "notes": ["the shadow policy raises no control: halts and step-ups it would have "
                  "raised, and what they would then have stopped, are not in it (a replay "
                  "with --policy has them)"],
        "speed": {"seconds": round(time.monotonic() - started, 3)},
        "generated_at": format_ms(int(time.time() * 1000)),
    }


def _versions(side: dict[str, list[Decided]]) -> dict[str, Any]:
    """Policy and model versions per order (its first decision on the topic)."""
    policies = Counter(ds[0].policy_version for ds in side.values())
    models = Counter(ds[0].model_version for ds in side.values())
    return {"policy_versions": dict(policies.most_common()),
            "model_versions": {"distinct": len(models),
                               "most_decisions": dict(models.most_common(5))}}


def _notional(settings: Settings, starts: dict, window: ReplayWindow, wanted: set[str]
              ) -> dict[str, float]:
    """Yen value of the labelled orders of the range (a market order: at no price, 0)."""
    out = {}
    reader = SourceReader(settings, starts, stop_ms=window.read_until_ms)
    for chunk in reader.read_all().values():
        for r in chunk.records:
            if r.order_id in wanted and window.in_range(r.ts):
                out[r.order_id] = r.qty * r.price if r.price is not None else 0.0
    return out
