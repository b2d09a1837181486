"""The order gateway of the benchmark, as its own process: orders at a steady offered rate.

    python -m benchmarks.producer SPEC.json

SPEC names the broker, topic prefix, run id, the workload seed, how many
orders, the offered rate (0: as fast as librdkafka takes them) and where to
write the send times. Each order's id is ``<run>-<seq>`` and the monotonic
clock reading just before ``produce()`` is kept in ``sent_ns[seq]`` (an .npy
file), so the collector turns each decision into a latency without anything
added to the order itself. ``CLOCK_MONOTONIC`` is system-wide on Linux, so the
two processes' readings compare.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import orjson
from confluent_kafka import Producer

from benchmarks.workload import Workload, order_id

__all__ = ["produce_orders"]

#: How far ahead of schedule the producer may run before it sleeps (a burst).
BURST_NS = 1_000_000


def produce_orders(spec: dict) -> dict:
    """Send ``spec['count']`` orders at ``spec['rate']`` per second; return what was achieved."""
    w = Workload.build(accounts=spec["accounts"], orders=spec["templates"], seed=spec["seed"],
                       now_ms=spec["now_ms"])
    templates = w.orders
    producer = Producer({"bootstrap.servers": spec["bootstrap"], "partitioner": "murmur2_random",
                         "linger.ms": spec.get("linger_ms", 1), "log_level": 3,
                         # as every gateway and the engine produce (tradeguard/kafka/clients.py)
                         "enable.idempotence": True,
                         "queue.buffering.max.messages": 500_000,
                         "enable.sparse.connections": False})
    topic = spec["topic"]
    # Connect and learn the partition leaders first: the first order must not
    # carry the client's start-up in its latency.
    producer.list_topics(topic, timeout=10)
    time.sleep(0.2)
    count, rate, run, first = spec["count"], float(spec["rate"]), spec["run"], spec.get("first_seq", 0)
    sent = np.zeros(count, np.int64)
    errors: list[str] = []

    def on_delivery(err, _msg):
        if err is not None:
            errors.append(str(err))

    step_ns = 1e9 / rate if rate > 0 else 0.0
    t0 = time.monotonic_ns()
    for i in range(count):
        if step_ns:
            ahead = t0 + int(i * step_ns) - time.monotonic_ns()
            if ahead > BURST_NS:
                producer.poll(0)
                time.sleep(ahead / 1e9)
        order = dict(templates[(first + i) % len(templates)])
        order["order_id"] = order_id(run, i)
        order["ts"] = time.time_ns() // 1_000_000
        value, key = orjson.dumps(order), order["account_id"].encode()
        sent[i] = time.monotonic_ns()
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.01)
        if i % 256 == 0:
            producer.poll(0)
    produced_s = (time.monotonic_ns() - t0) / 1e9
    left = producer.flush(60)
    np.save(spec["sent_path"], sent)
    return {"count": count, "produced_s": round(produced_s, 3),
            "orders_per_s": round(count / produced_s, 1) if produced_s > 0 else None,
            "undelivered": left, "errors": errors[:5]}


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    result = produce_orders(spec)
    print(json.dumps(result), flush=True)
    return 0 if not result["undelivered"] and not result["errors"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
