"""Where a worker's time goes: microseconds per order for each stage, in process, no broker.

The stages are the account agent's, called as it calls them, on the benchmark
workload after a warm-up (Numba compiled, state grown, models past their first
window):

- ``decode``: ``streams.records.ORDER.decode`` of each order's bytes;
- ``decide``: all of ``AccountSurveillance.decide``; and apart, on a twin
  instance, its pieces in the order ``decide`` runs them:
  ``columns`` (decoded dicts to an ``OrderBatch``: dense ids, string hashes),
  ``features`` (``AccountFeatures.transform_orders``), ``models`` (the
  surveillance's anomaly model scored and learned, its classifier scored once
  warm), ``policy`` (``score_orders``); what ``decide`` costs beyond them is the
  per-order ``decision_loop`` (controls, reasons, decision and flow records);
- ``encode``: ``streams.codec.encode_value`` of each decision and flow record.
"""

from __future__ import annotations

import time

from benchmarks.workload import Workload, order_id
from streams.codec import encode_value
from streams.records import ORDER
from tradeguard.features.account import ACCOUNT_FEATURES
from tradeguard.policy.config import PolicyConfig
from tradeguard.policy.orders import score_orders
from tradeguard.surveillance.accounts import AccountSurveillance
from tradeguard.surveillance.controls import ControlBoard

__all__ = ["run_cost"]

STAGES = ("decode", "decide", "encode", "columns", "features", "models", "policy")


def _surveillance(workload: Workload) -> AccountSurveillance:
    s = AccountSurveillance()
    s.learn_auth(workload.logins)
    for t in workload.trades:  # what tickers.profile would have told the worker
        s.profiles[t["ticker"]] = (t["price"] * t["qty"] * 400, t["price"])
    return s


def _batches(workload: Workload, size: int, count: int, start_ms: int) -> list[list[bytes]]:
    raws = []
    for i in range(count):
        o = dict(workload.orders[i % len(workload.orders)])
        o["order_id"], o["ts"] = order_id("cost", i), start_ms + i
        raws.append(encode_value(o))
    return [raws[i:i + size] for i in range(0, count, size)]


def _pieces(s: AccountSurveillance, decoded: list[dict], cfg: PolicyConfig, t: dict) -> None:
    """decide()'s stages one by one (mirrors AccountSurveillance.decide), adding ns to ``t``."""
    t0 = time.perf_counter_ns()
    batch = s.order_batch(decoded)
    t1 = time.perf_counter_ns()
    x = s.features.transform_orders(batch)
    t2 = time.perf_counter_ns()
    scores = {}
    anomaly, classifier = getattr(s, "anomaly", None), getattr(s, "classifier", None)
    if anomaly is not None:
        scores["anomaly"] = anomaly.score_many(x)
    if classifier is not None and classifier.is_warm:
        scores["fraud_probability"] = classifier.score_many(x)
    t3 = time.perf_counter_ns()
    score_orders(x, ACCOUNT_FEATURES, cfg, scores)
    t4 = time.perf_counter_ns()
    if anomaly is not None:
        anomaly.learn_many(x)
    t5 = time.perf_counter_ns()
    t["columns"] += t1 - t0
    t["features"] += t2 - t1
    t["models"] += (t3 - t2) + (t5 - t4)
    t["policy"] += t4 - t3


def run_cost(workload: Workload, batch_sizes=(1, 64, 1024), orders: int = 20_000,
             log=print) -> dict:
    cfg, board = PolicyConfig.defaults(), ControlBoard()
    now = int(time.time() * 1000)
    models = [m for m in ("anomaly", "classifier") if hasattr(_surveillance(Workload()), m)]
    out: dict = {"models_in_decide": models, "batch_sizes": {}}
    for size in batch_sizes:
        n = min(orders, 5_000) if size == 1 else orders
        whole, parts = _surveillance(workload), _surveillance(workload)
        scratch = dict.fromkeys(STAGES, 0)
        # Warm-up: compile, grow the state, fill the anomaly model's first window.
        for raws in _batches(workload, size, max(size * 4, 2_000), now - 120_000):
            decoded = [ORDER.decode(r) for r in raws]
            whole.decide(decoded, board, cfg, now)
            _pieces(parts, decoded, cfg, scratch)
        t = dict.fromkeys(STAGES, 0)
        for raws in _batches(workload, size, n, now):
            t0 = time.perf_counter_ns()
            decoded = [ORDER.decode(r) for r in raws]
            t1 = time.perf_counter_ns()
            outcome = whole.decide(decoded, board, cfg, now)
            t2 = time.perf_counter_ns()
            for r in outcome.decisions:
                encode_value(r)
            for r in outcome.flows:
                encode_value(r)
            t3 = time.perf_counter_ns()
            t["decode"] += t1 - t0
            t["decide"] += t2 - t1
            t["encode"] += t3 - t2
            _pieces(parts, decoded, cfg, t)
        us = {f"{k}_us_per_order": round(v / n / 1e3, 3) for k, v in t.items()}
        us["decision_loop_us_per_order"] = round(us["decide_us_per_order"] - sum(
            us[f"{k}_us_per_order"] for k in ("columns", "features", "models", "policy")), 3)
        us["features_models_policy_us_per_order"] = round(sum(
            us[f"{k}_us_per_order"] for k in ("features", "models", "policy")), 3)
        us["worker_total_us_per_order"] = round(sum(
            us[f"{k}_us_per_order"] for k in ("decode", "decide", "encode")), 3)
        us["orders"] = n
        out["batch_sizes"][str(size)] = us
        log(f"  batch {size:5d}: decode {us['decode_us_per_order']:.2f} | columns "
            f"{us['columns_us_per_order']:.2f}  features {us['features_us_per_order']:.2f}  "
            f"models {us['models_us_per_order']:.2f}  policy {us['policy_us_per_order']:.2f}  "
            f"loop {us['decision_loop_us_per_order']:.2f} = decide "
            f"{us['decide_us_per_order']:.2f} | encode {us['encode_us_per_order']:.2f}  µs/order")
    return out


if __name__ == "__main__":  # python -m benchmarks.cost: this part alone
    run_cost(Workload.build(accounts=5_000, orders=20_000))
