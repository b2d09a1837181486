"""``python -m benchmarks.latency_split``: where produce-to-decision latency goes, at one rate.

One worker on a fresh broker, orders paced at ``--rate`` for ``--seconds``; a reader of
``decisions`` splits each order's latency at the decision's own ``ts`` (the worker's wall
clock when its step began):

- ``order -> decided``: the order's ``ts`` (stamped by the producer just before ``produce``)
  to its step's start: producer, broker, the worker's fetch and consumer thread, the queue
  before the step, alignment holds;
- ``decided -> consumed``: the step, the engine's produce, the broker, this reader's fetch.

Millisecond clocks on one machine (``time.time``): good for the split, not for sub-ms figures.
Compare two trees by running it from each (``PYTHONPATH=<tree>``), alternated, in one sitting:
the load of the shared cores moves these figures more than most code changes.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import orjson
from confluent_kafka import OFFSET_END, Consumer, TopicPartition

from benchmarks.e2e import start_engine
from benchmarks.rig import Rig
from benchmarks.workload import Workload

__all__ = ["split"]


def split(rows: np.ndarray) -> dict[str, dict[str, float]]:
    """Percentiles (ms) of each leg from (order_ts, decided_ts, consumed_ms) rows.

    >>> r = split(np.array([[0, 10, 15], [0, 20, 30], [0, 30, 45]], dtype=float))
    >>> r["order -> decided"]["p50"], r["decided -> consumed"]["p50"], r["total"]["p50"]
    (20.0, 10.0, 30.0)
    """
    legs = {"order -> decided": rows[:, 1] - rows[:, 0],
            "decided -> consumed": rows[:, 2] - rows[:, 1],
            "total": rows[:, 2] - rows[:, 0]}
    return {name: {f"p{q:g}": round(float(np.percentile(x, q)), 1) for q in (50, 90, 99)}
            for name, x in legs.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1_000, help="orders per second")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--broker", choices=("kafka", "tansu"), default="kafka")
    parser.add_argument("--guarantee", default="at_least_once",
                        choices=("auto", "at_least_once", "exactly_once"))
    args = parser.parse_args(argv)
    now = int(time.time() * 1000)
    spec = {"accounts": 5_000, "templates": 20_000, "seed": 11, "now_ms": now}
    workload = Workload.build(accounts=5_000, orders=20_000, seed=11, now_ms=now)
    with Rig(broker=args.broker) as rig:
        rig.guarantee = args.guarantee
        settings = rig.topics("split")
        rig.load_context(settings, workload)
        collector = rig.collector(settings)
        (worker,) = start_engine(rig, settings, collector, spec)
        reader = Consumer({"bootstrap.servers": settings.bootstrap_servers,
                           "group.id": f"split-{rig.tag}", "fetch.wait.max.ms": 100,
                           "fetch.min.bytes": 1, "isolation.level": "read_committed"})
        reader.assign([TopicPartition(settings.topic("decisions"), p, OFFSET_END)
                       for p in range(settings.partitions)])
        reader.poll(1.0)
        count = int(args.rate * args.seconds)
        producer = rig.produce(settings, "split", count=count, rate=args.rate,
                               workload_spec=spec)
        rows, steps = [], set()
        deadline = time.time() + args.seconds + 60
        while len(rows) < count and time.time() < deadline:
            first = reader.poll(0.05)
            if first is None:
                continue
            consumed = time.time() * 1000
            for msg in [first] + reader.consume(10_000, 0):
                if msg.error():
                    continue
                d = orjson.loads(msg.value())
                if d["order_id"].startswith("split-"):
                    rows.append((d["order_ts"], d["ts"], consumed))
                    steps.add(d.get("step"))
        producer.process.wait(30)
        reader.close()
        load = os.getloadavg()[0]
        if not rows:
            print("no decisions read; the worker's log:\n" + worker.log_tail())
            return 1
        measured = np.array(rows, dtype=float)[len(rows) // 6:]  # past the first second
        print(f"{args.broker}, {args.guarantee}, {args.rate:,.0f}/s for {args.seconds:g} s: "
              f"{len(rows):,}/{count:,} decided in {len(steps):,} steps, load {load:.2f}")
        for leg, q in split(measured).items():
            print(f"  {leg:20s} " + "  ".join(f"{k} {v:7.1f} ms" for k, v in q.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
