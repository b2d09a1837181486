"""What provenance costs the hot path: µs per step to stamp it, bytes on the wire.

    python -m benchmarks.provenance_cost

Calls the engine's own ``EngineService._stamp`` (agents/engine.py) on steps shaped like
a worker's: ``partitions`` input partitions released, each with orders, logins and
trades (three topics' spans), a few replicated offsets changed since the last step, and
a couple of ticker profiles applied at once. The produce call is replaced by a counter of
bytes: librdkafka's own cost for one more small record per step is not included (the
decisions of a step are produced the same way, one call each). Prints µs per step and
bytes per step for 1, 4 and 8 partitions; and the CPU time of the whole loop per step
(stamping plus the loop's own setup), which a loaded machine inflates less than the wall
clock.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

from agents.engine import EngineService
from agents.state import PartitionState
from tradeguard.core import Shared


def _fake(partitions: int) -> SimpleNamespace:
    sent = {"bytes": 0, "records": 0}

    def produce(topic, key, value, delivery):
        sent["bytes"] += len(value)
        sent["records"] += 1

    shared = Shared()
    for name in ("controls.tickers", "controls.accounts", "tickers.profile", "auth.events",
                 "reference.tickers"):
        for q in range(partitions):
            shared.seen[(name, q)] = shared.seen_from[(name, q)] = 1000
    engine = SimpleNamespace(
        incarnation="3c195ec0f580", _steps=0, _seen_stamped={}, _restored={}, shared=shared,
        partitions={p: PartitionState(core=None) for p in range(partitions)},
        pipe=SimpleNamespace(produce=produce), out_topics={"engine.steps": "engine.steps"})
    return engine, sent


def measure(partitions: int, steps: int = 20_000) -> dict:
    engine, sent = _fake(partitions)
    profiles = SimpleNamespace(profiles=[{"ticker": "3569", "ts": 1744761600000,
                                          "adv_value": 123456789.5, "last_price": 412.0},
                                         {"ticker": "7203", "ts": 1744761600000,
                                          "adv_value": 98765432109.25, "last_price": 2512.5}])
    ready = {p: None for p in range(partitions)}
    outs = {0: profiles}
    elapsed = 0.0
    offset = 10_000
    cpu = time.process_time()
    for i in range(steps):
        for p, state in engine.partitions.items():  # what release() leaves for the stamp
            state._released = {"orders": [offset, offset + 12], "auth.events": [offset, offset + 3],
                               "market.trades": [offset, offset + 40]}
        for k in range(3):  # a few replicated partitions moved since the last step
            engine.shared.seen[("tickers.profile", (i + k) % partitions)] += 1
        offset += 40
        started = time.perf_counter()
        EngineService._stamp(engine, ready, outs if i % 60 == 0 else {}, None, 1765000000000)
        elapsed += time.perf_counter() - started
    cpu = time.process_time() - cpu  # this process's CPU: the machine is shared
    return {"partitions": partitions, "us_per_step": round(elapsed / steps * 1e6, 2),
            "cpu_us_per_step_whole_loop": round(cpu / steps * 1e6, 2),
            "bytes_per_step": round(sent["bytes"] / sent["records"], 1)}


def main() -> int:
    for partitions in (1, 4, 8):
        print(measure(partitions))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
