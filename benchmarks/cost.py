"""Where a worker's time goes: microseconds per order for each stage, in process, no broker.

The stages are the engine's, called as the worker calls them, on the benchmark
workload after a warm-up (Numba compiled, state grown, models past their first
window):

- ``decode``: ``streams.wire.BatchDecoder.decode_many`` of the orders' bytes;
- ``core``: all of ``PartitionCore.process``; and apart, on a twin core, its
  pieces in the order it runs them: ``columns`` (typed records to an
  ``OrderBatch``: dense ids, string hashes), ``features`` (the merged
  login/order kernel), ``models`` (the anomaly model scored and learned, the
  classifier once warm), ``policy`` (``score_orders`` and the action codes);
  what ``core`` costs beyond them is ``records`` (reasons, controls, the
  decision and flow blocks);
- ``encode``: ``streams.wire.encode_decisions`` and ``encode_flows``.

``worker_total`` is decode + core + encode: the whole in-worker cost per order
short of the Kafka client calls.
"""

from __future__ import annotations

import gc
import time

from benchmarks.workload import Workload, order_id
from streams.codec import encode_value
from streams.records import AUTH_EVENT, ORDER
from streams.wire import BatchDecoder, encode_decisions, encode_flows
from tradeguard.core import Inputs, PartitionCore, Shared
from tradeguard.core.accounts import _runs
from tradeguard.features.account import ACCOUNT_FEATURES
from tradeguard.policy.config import PolicyConfig
from tradeguard.policy.orders import score_orders

__all__ = ["run_cost"]

STAGES = ("decode", "core", "encode", "columns", "features", "models", "policy")


def _core(workload: Workload) -> PartitionCore:
    shared = Shared()
    for t in workload.trades:  # what tickers.profile would have told the worker
        shared.profiles.apply(t["ticker"], 0, t["price"] * t["qty"] * 400, t["price"])
    core = PartitionCore(shared)
    logins, _ = BatchDecoder(AUTH_EVENT).decode_many([encode_value(r) for r in workload.logins])
    core.process(Inputs(auth=logins), PolicyConfig.defaults())
    return core


def _batches(workload: Workload, size: int, count: int, start_ms: int) -> list[list[bytes]]:
    raws = []
    for i in range(count):
        o = dict(workload.orders[i % len(workload.orders)])
        o["order_id"], o["ts"] = order_id("cost", i), start_ms + i
        raws.append(encode_value(o))
    return [raws[i:i + size] for i in range(0, count, size)]


def _pieces(core: PartitionCore, orders: list, cfg: PolicyConfig, t: dict) -> None:
    """process()'s stages one by one (mirrors AccountCore), adding ns to ``t``."""
    a = core.accounts
    t0 = time.perf_counter_ns()
    batch = a.order_batch(orders)
    auth = a.auth_batch([])
    t1 = time.perf_counter_ns()
    x = a.features.process(auth, batch, _runs([], [o.ts for o in orders]))
    t2 = time.perf_counter_ns()
    scores, _ = a.anomaly.score_learn_many(x)
    extra = {"anomaly": scores,
             "shared_infra_accounts": a.infra.shared_accounts_many(
                 [o.account_id for o in orders], batch.ts_ms.tolist())}
    if a.classifier.is_warm:
        extra["fraud_probability"] = a.classifier.score_many(x)
    t3 = time.perf_counter_ns()
    verdicts = score_orders(x, ACCOUNT_FEATURES, cfg, extra)
    verdicts.action_codes(cfg)
    t4 = time.perf_counter_ns()
    t["columns"] += t1 - t0
    t["features"] += t2 - t1
    t["models"] += t3 - t2
    t["policy"] += t4 - t3


def run_cost(workload: Workload, batch_sizes=(1, 64, 1024), orders: int = 20_000,
             log=print) -> dict:
    cfg = PolicyConfig.defaults()
    now = int(time.time() * 1000)
    decoder = BatchDecoder(ORDER)
    out: dict = {"stages": list(STAGES), "batch_sizes": {}}
    for size in batch_sizes:
        n = min(orders, 5_000) if size == 1 else orders
        whole, parts = _core(workload), _core(workload)
        scratch = dict.fromkeys(STAGES, 0)
        # Warm-up: compile, grow the state, fill the anomaly model's first window.
        for raws in _batches(workload, size, max(size * 4, 5_000), now - 120_000):
            decoded, _ = decoder.decode_many(raws)
            whole.process(Inputs(orders=decoded), cfg)
            _pieces(parts, decoded, cfg, scratch)
        # As the worker does once it is up (agents/engine.py): long-lived state frozen out
        # of the cyclic collector's reach.
        gc.collect()
        gc.freeze()
        t = dict.fromkeys(STAGES, 0)
        for raws in _batches(workload, size, n, now):
            t0 = time.perf_counter_ns()
            decoded, _ = decoder.decode_many(raws)
            t1 = time.perf_counter_ns()
            result = whole.process(Inputs(orders=decoded), cfg)
            t2 = time.perf_counter_ns()
            encode_decisions(result.decisions, now)
            encode_flows(result.flows)
            t3 = time.perf_counter_ns()
            t["decode"] += t1 - t0
            t["core"] += t2 - t1
            t["encode"] += t3 - t2
            _pieces(parts, decoded, cfg, t)
        us = {f"{k}_us_per_order": round(v / n / 1e3, 3) for k, v in t.items()}
        us["records_us_per_order"] = round(us["core_us_per_order"] - sum(
            us[f"{k}_us_per_order"] for k in ("columns", "features", "models", "policy")), 3)
        us["features_models_policy_us_per_order"] = round(sum(
            us[f"{k}_us_per_order"] for k in ("features", "models", "policy")), 3)
        us["worker_total_us_per_order"] = round(sum(
            us[f"{k}_us_per_order"] for k in ("decode", "core", "encode")), 3)
        us["orders"] = n
        out["batch_sizes"][str(size)] = us
        log(f"  batch {size:5d}: decode {us['decode_us_per_order']:.2f} | columns "
            f"{us['columns_us_per_order']:.2f}  features {us['features_us_per_order']:.2f}  "
            f"models {us['models_us_per_order']:.2f}  policy {us['policy_us_per_order']:.2f}  "
            f"records {us['records_us_per_order']:.2f} = core {us['core_us_per_order']:.2f} | "
            f"encode {us['encode_us_per_order']:.2f} | total "
            f"{us['worker_total_us_per_order']:.2f} µs/order")
    return out


if __name__ == "__main__":  # python -m benchmarks.cost: this part alone
    run_cost(Workload.build(accounts=5_000, orders=20_000))
