"""The full-day record mix, flat out: orders with their logins, trades and labels, one worker.

``scenarios/full-day.toml`` carries about 4 market trades and 1 login event per
order (25k orders, 103k trades, 24k logins), plus analysts' labels; the engine
adds one ``tickers.flow`` record per order, which it reads back itself. This
part preloads that mix, interleaved in event time as it happened (a login, the
trades of the moment, the order), then starts one worker and measures orders
decided per second while it works through all of it: every record of every
topic is decoded and processed, not just the orders.
"""

from __future__ import annotations

import os
import random
import time

import numpy as np

from benchmarks.rig import Rig
from benchmarks.stats import middle_rate
from benchmarks.workload import Workload, order_id
from tradeguard.broker.clients import GatewayProducer

__all__ = ["run_mixed"]

TRADES_PER_ORDER = 4
LOGINS_PER_ORDER = 1
LABEL_EVERY = 200  # one analyst label per this many orders


def _records(workload: Workload, run: str, orders: int, now_ms: int, seed: int = 5):
    """(topic, record) in event-time order: the full-day mix around the workload's orders."""
    rng = random.Random(seed)
    trades = workload.trades
    start = now_ms - orders  # one order per millisecond of event time, ending now
    for i in range(orders):
        ts = start + i
        template = workload.orders[i % len(workload.orders)]
        yield "auth.events", {"account_id": template["account_id"], "event": "session_start",
                              "session_id": template["session_id"], "ip": template["ip"],
                              "device_id": template["device_id"],
                              "user_agent": template["user_agent"], "country": "JP",
                              "asn": 2516, "ts": ts}
        for _ in range(TRADES_PER_ORDER):
            t = trades[rng.randrange(len(trades))]
            yield "market.trades", {**t, "ts": ts}
        yield "orders", {**template, "order_id": order_id(run, i), "ts": ts}
        if i % LABEL_EVERY == LABEL_EVERY - 1:
            yield "feedback", {"account_id": template["account_id"],
                               "order_id": order_id(run, i - 1), "label": "legit",
                               "source": "analyst-bench", "ts": ts}


def run_mixed(rig: Rig, workload: Workload, orders: int, log=print) -> dict:
    settings = rig.topics("mixed")
    rig.load_context(settings, workload)
    run = f"mx{rig.tag}"
    gateway = GatewayProducer(settings, **{"linger.ms": 20, "batch.num.messages": 10_000})
    counts: dict[str, int] = {}
    for name, record in _records(workload, run, orders, int(time.time() * 1000)):
        gateway.send(name, record)
        counts[name] = counts.get(name, 0) + 1
    gateway.flush(120)
    collector = rig.collector(settings)
    collector.expect(run, orders)
    started = time.monotonic_ns()
    worker = rig.worker(settings, "mixed-w0")
    collector.wait(run, timeout_s=180, stall_s=60, until_first=True)
    collector.wait(run, timeout_s=120 + orders / 500, stall_s=30)
    recv = collector.runs[run]
    done = recv > 0
    worker.stop()
    decided = np.sort(recv[done])
    total = sum(counts.values())
    out = {
        "orders": orders, "decided": int(done.sum()), "missing": int((~done).sum()),
        "duplicates": collector.duplicates, "records": counts,
        "records_per_order": round(total / orders, 2),
        "orders_per_s": round(middle_rate(decided), 1) if len(decided) > 1 else 0.0,
        "input_records_per_s": (round(middle_rate(decided) * total / orders, 1)
                                if len(decided) > 1 else 0.0),
        "startup_s": round((decided[0] - started) / 1e9, 2) if len(decided) else None,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    log(f"  mixed: {out['orders_per_s']:,.0f} orders/s with {out['records_per_order']} input "
        f"records per order ({out['input_records_per_s']:,.0f} records/s), "
        f"{out['decided']}/{orders} decided, load {out['load_avg_1m']}")
    return out
