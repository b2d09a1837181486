"""Client settings per broker, measured: one hop (produce -> consume, no worker) per variant.

``python -m benchmarks.clients [--broker kafka|tansu] [--rates 1000,5000]``: for
each producer linger and consumer fetch wait in the grid, a separate producer
process paces orders (idempotent, acks=all) at each rate while this process
consumes them; the table gives p50 / p99 / p99.9 of the hop. The values chosen
for ``tradeguard/kafka/profiles.py`` come from this table (docs/architecture.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.rig import Rig
from benchmarks.stats import LatencyHistogram
from benchmarks.workload import Workload

__all__ = ["run_clients"]

GRID = {"kafka": [(0.0, 500), (0.5, 500), (1.0, 500), (5.0, 500), (0.5, 100), (0.5, 10),
                  (1.0, 100)],
        "tansu": [(0.5, 10), (1.0, 10), (5.0, 10), (5.0, 5)]}


def run_clients(rig: Rig, spec: dict, rates: list[float], seconds: float, log=print) -> list:
    """One row per (linger, fetch wait, rate); a discarded warm-up first.

    The warm-up matters on Apache Kafka: a fresh broker's JVM compiles its hot paths in
    its first tens of seconds, and on a slow machine its p99 meanwhile is hundreds of ms;
    without it the grid's first variants would measure the JIT, not the setting.
    """
    rows = []
    warm = rig.topics("warmup")
    collector = rig.collector(warm, "orders")
    collector.expect("warmup", 100_000)
    producer = rig.produce(warm, "warmup", count=100_000, rate=5_000, workload_spec=spec)
    collector.wait("warmup", 120, busy=lambda: producer.poll() is None)
    producer.process.wait(30)
    for linger_ms, fetch_wait_ms in GRID[rig.broker.profile]:
        for rate in rates:
            name = f"l{linger_ms:g}w{fetch_wait_ms}r{int(rate)}".replace(".", "_")
            settings = rig.topics(name)
            collector = rig.collector(settings, "orders", fetch_wait_ms=fetch_wait_ms)
            count = int(rate * seconds)
            collector.expect(name, count)
            collector.poll(1.0)
            producer = rig.produce(settings, name, count=count, rate=rate,
                                   workload_spec={**spec, "linger_ms": linger_ms})
            collector.wait(name, 60, busy=lambda: producer.poll() is None)
            producer.process.wait(30)
            recv, sent = collector.runs[name], rig.sent_ns(name)
            done = recv > 0
            summary = LatencyHistogram.from_ns(recv[done] - sent[done]).summary()
            row = {"linger_ms": linger_ms, "fetch_wait_ms": fetch_wait_ms, "rate": rate,
                   "received": int(done.sum()), "count": count,
                   "load_avg_1m": round(os.getloadavg()[0], 2), **summary}
            rows.append(row)
            log(f"  linger {linger_ms:g} ms, fetch wait {fetch_wait_ms} ms, {rate:,.0f}/s: "
                f"p50 {row['p50_ms']:.2f} p99 {row['p99_ms']:.2f} p99.9 {row['p999_ms']:.2f} ms "
                f"({row['received']}/{count}, load {row['load_avg_1m']})")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.clients",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--broker", choices=("kafka", "tansu"), default="kafka")
    parser.add_argument("--rates", default="1000,5000")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    spec = {"accounts": 2_000, "templates": 5_000, "seed": 3, "now_ms": int(time.time() * 1000)}
    Workload.build(accounts=spec["accounts"], orders=spec["templates"], seed=spec["seed"],
                   now_ms=spec["now_ms"])
    started = datetime.now(timezone.utc)
    with Rig(broker=args.broker) as rig:
        rows = run_clients(rig, spec, [float(r) for r in args.rates.split(",")], args.seconds)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{started:%Y%m%dT%H%M%SZ}-clients-{args.broker}.json"
    path.write_text(json.dumps({"command": "python -m benchmarks.clients " + " ".join(
        argv or sys.argv[1:]), "broker": args.broker, "rows": rows}, indent=1) + "\n")
    print("\n| linger ms | fetch wait ms | offered/s | p50 ms | p99 ms | p99.9 ms | load |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['linger_ms']:g} | {r['fetch_wait_ms']} | {r['rate']:,.0f} | {r['p50_ms']:.2f} "
              f"| {r['p99_ms']:.2f} | {r['p999_ms']:.2f} | {r['load_avg_1m']} |")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
