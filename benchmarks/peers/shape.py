"""The decision-shaped record the peers write: the engine's fields, nothing decided.

Standard library only: the Quix Streams peer may run in an interpreter of its
own (quixstreams pins an older confluent-kafka than the engine).

>>> d = decision_shaped({"order_id": "r-1", "account_id": "a", "ticker": "7203",
...                      "side": "buy", "ts": 5}, now_ms=9)
>>> d["order_id"], d["action"], d["order_ts"], d["ts"]
('r-1', 'allow', 5, 9)
"""

from __future__ import annotations

import time

__all__ = ["decision_shaped"]


def decision_shaped(order: dict, now_ms: int | None = None) -> dict:
    return {
        "order_id": order["order_id"], "account_id": order["account_id"],
        "ticker": order["ticker"], "side": order["side"], "action": "allow", "score": 0.0,
        "reasons": [], "model_version": "passthrough", "order_ts": order["ts"],
        "ts": int(time.time() * 1000) if now_ms is None else now_ms,
    }
