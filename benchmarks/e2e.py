"""End to end through the broker: produce-to-decision latency at steady offered rates.

One worker, full scoring, its own topic set. The producer is a separate
process pacing orders at each offered rate in turn; this process consumes
``decisions`` and stamps each one. Per step: the latency distribution, the
backlog at mid-step and at the end of producing (growing = not sustained),
the decided rate, and the worker's RSS. ``rate = 0`` is "flat out": a fixed
count sent as fast as the producer can.
"""

from __future__ import annotations

import os
import time

import numpy as np

from benchmarks.rig import Collector, Rig, rss_bytes
from benchmarks.stats import LatencyHistogram, lag_verdict, middle_rate
from benchmarks.workload import Workload
from tradeguard.runtime.settings import Settings

__all__ = ["run_e2e", "start_engine"]


def start_engine(rig: Rig, settings: Settings, collector: Collector, spec: dict,
                 workers: int = 1, warm_orders: int = 500, timeout_s: float = 120.0) -> list:
    """Start ``workers`` worker processes and wait until warm-up orders come back decided.

    The warm-up orders are on the topic before the first worker starts, so
    ``rig.first_decision_s`` is the worker's own start-up: process start to its
    first decision consumed (imports, compiled kernels loaded, group joined,
    control board read).
    """
    run = f"warm{rig.tag}-{settings.app_id}"
    collector.expect(run, warm_orders)
    producer = rig.produce(settings, run, count=warm_orders, rate=2_000, workload_spec=spec)
    producer.process.wait(60)
    started = time.monotonic()
    procs = [rig.worker(settings, f"{settings.app_id}-w{k}") for k in range(workers)]
    collector.wait(run, timeout_s, stall_s=timeout_s, until_first=True)
    rig.first_decision_s = round(time.monotonic() - started, 2)
    if not collector.wait(run, timeout_s, stall_s=timeout_s):
        raise RuntimeError(f"the worker decided {warm_orders - collector.missing(run)} of "
                           f"{warm_orders} warm-up orders in {timeout_s:g}s; its log:\n"
                           + procs[0].log_tail())
    return procs


def broker_floor(rig: Rig, spec: dict, rate: float = 1_000, seconds: float = 2.0) -> dict:
    """One hop, produce -> consume, no worker: the latency the broker and clients add per hop."""
    settings = rig.topics(f"floor{rig.suffix}")
    collector = rig.collector(settings, "orders")
    count = int(rate * seconds)
    collector.expect("floor", count)
    collector.poll(1.0)  # joined and fetching before the first order: no set-up in the figure
    producer = rig.produce(settings, "floor", count=count, rate=rate, workload_spec=spec)
    collector.wait("floor", 60, busy=lambda: producer.poll() is None)
    producer.process.wait(30)
    recv, sent = collector.runs["floor"], rig.sent_ns("floor")
    done = recv > 0
    return {"offered_per_s": rate, **LatencyHistogram.from_ns(recv[done] - sent[done]).summary(),
            "after_first_second": _after_first_second(sent, recv),
            "max_ms_by_second": _max_by_second(sent[done], recv[done])}


def _after_first_second(sent: np.ndarray, recv: np.ndarray) -> dict:
    """The latency of the orders sent after the first second of a run, beside the whole run's.

    Every run's producer is a new process, and on this machine the first second of every run
    (the broker floor's included, with no worker at all) holds its worst latencies: on a
    fresh producer the broker's append time showed the first orders held ~300 ms in the
    client before they were sent (a one-hop probe with LogAppendTime topics, 8 December). A gateway's
    producer lives for days; what follows the first second is what it sees. Both figures
    are reported; neither replaces the other.
    """
    done = recv > 0
    later = done & (sent >= sent[0] + 1_000_000_000)
    if not later.any():
        return {}
    return LatencyHistogram.from_ns(recv[later] - sent[later]).summary()


def run_e2e(rig: Rig, workload: Workload, spec: dict, rates: list[float], step_s: float,
            flat_count: int, log=print) -> dict:
    floor = broker_floor(rig, spec)
    later = floor["after_first_second"]
    log(f"  broker floor (one hop, no worker): p50 {floor['p50_ms']:.2f} ms, "
        f"p99 {floor['p99_ms']:.2f} ms; after the first second p50 "
        f"{later.get('p50_ms', float('nan')):.2f} ms, p99 {later.get('p99_ms', float('nan')):.2f} ms")
    settings = rig.topics(f"e2e{rig.suffix}")
    rig.load_context(settings, workload)
    collector = rig.collector(settings)
    t = time.monotonic()
    (worker,) = start_engine(rig, settings, collector, spec)
    out: dict = {"broker_floor": floor, "worker_ready_s": round(time.monotonic() - t, 1),
                 "first_decision_s": rig.first_decision_s,
                 "steps": []}
    seq = 0
    for rate in rates:
        count = int(rate * step_s) if rate > 0 else flat_count
        run = f"r{int(rate)}"
        collector.expect(run, count)
        producer = rig.produce(settings, run, count=count, rate=rate, workload_spec=spec,
                               first_seq=seq)
        seq += count
        decided_all = collector.wait(run, timeout_s=120 + count / 1_000,
                                     busy=lambda: producer.poll() is None)
        producer.process.wait(60)
        step = _step(rig, collector, run, rate, count, decided_all, worker.process.pid)
        step["producer"] = rig.producer_result(producer)
        out["steps"].append(step)
        log(f"  offered {'flat out' if rate <= 0 else f'{rate:,.0f}/s'}: {step['summary_line']}")
    sustained = [s["offered_per_s"] for s in out["steps"] if s.get("sustained")]
    out["max_sustained_offered_per_s"] = max(sustained) if sustained else 0
    out["missing_decisions"] = sum(s["missing"] for s in out["steps"])
    return out


def _max_by_second(sent, recv) -> list[float]:
    """The worst latency of the orders sent in each second of the step: spikes show up here."""
    if len(sent) == 0:
        return []
    second = (sent - sent.min()) // 1_000_000_000
    lat = recv - sent
    return [round(float(lat[second == k].max()) / 1e6, 1) if (second == k).any() else None
            for k in range(int(second.max()) + 1)]


def _step(rig: Rig, collector: Collector, run: str, rate: float, count: int, decided_all: bool,
          worker_pid: int) -> dict:
    sent = rig.sent_ns(run)
    recv = collector.runs[run]
    done = recv > 0
    hist = LatencyHistogram.from_ns(recv[done] - sent[done])
    step = {"offered_per_s": rate if rate > 0 else "flat_out", "orders": count,
            "decided": int(done.sum()), "missing": int((~done).sum()),
            "all_decided": decided_all, "load_avg_1m": round(os.getloadavg()[0], 2),
            **hist.summary(), "histogram_ms": hist.buckets(),
            "worker_rss_bytes": rss_bytes(worker_pid),
            "max_ms_by_second": _max_by_second(sent[done], recv[done]),
            "after_first_second": _after_first_second(sent, recv)}
    if done.any():
        last = int(recv[done].max())
        step["decided_per_s"] = round(step["decided"] / ((last - int(sent[0])) / 1e9), 1)
        step["decided_per_s_middle"] = round(middle_rate(recv[done]), 1)
    if rate > 0 and done.any():
        decided_sorted = np.sort(recv[done])
        v = lag_verdict(sent, decided_sorted, rate)
        step.update(lag_mid=v.lag_mid, lag_end=v.lag_end, lag_tolerance=v.tolerance,
                    sustained=bool(v.sustained and decided_all))
    else:
        step["sustained"] = False
    step["summary_line"] = (
        f"p50 {step.get('p50_ms', float('nan')):.2f} ms  p99 {step.get('p99_ms', float('nan')):.2f} ms"
        f"  p99.9 {step.get('p999_ms', float('nan')):.2f} ms  max {step.get('max_ms', float('nan')):.1f}"
        f" ms  decided {step['decided']}/{count} at {step.get('decided_per_s', 0):,.0f}/s"
        f"  {'sustained' if step['sustained'] else 'NOT sustained'}  load {step['load_avg_1m']}"
        + (f"  (after the first second: p50 {later['p50_ms']:.2f} / p99 {later['p99_ms']:.2f} ms)"
           if (later := step["after_first_second"]) else ""))
    return step
