"""The gateway's view: submit to decision in hand, through ``GatewayClient``, at steady rates.

One worker, full scoring, its own topic set. This process is the order gateway:
an asyncio loop paces orders at each offered rate (open loop: an order is sent
when it is due, whatever the earlier ones are doing) and awaits each one's
``submit_async``. Per rate, two steps:

- ``generous``: a 5 s deadline, so nearly every answer is the engine's: the
  gateway-observed round trip p50 / p99 / p99.9;
- ``deadline``: the gateway's real deadline (20 ms by default): the share of
  orders answered by the fallback instead of the engine.

Between steps the engine's late decisions are awaited, so a step starts on a
quiet engine. The client's own CPU (pacing, JSON, correlation) is reported per
order: it shares the machine with the broker and the worker.

Standalone: ``python -m benchmarks.gateway [--quick]``; ``run_gateway`` is the
part that ``python -m benchmarks`` calls with its rig and workload.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from benchmarks.rig import Rig
from benchmarks.stats import LatencyHistogram
from benchmarks.workload import Workload
from tradeguard.gateway import GatewayClient

__all__ = ["TARGETS", "markdown", "measured", "run_gateway"]

GENEROUS_MS = 5_000.0

#: The issue's targets, in ``benchmarks.report.TARGETS``'s shape: (key, what, goal, unit, higher).
TARGETS = (
    ("gateway_p99_ms_at_5k", "Gateway-observed round trip p99 at 5,000 orders/s", 15.0, "ms",
     False),
    ("gateway_fallback_pct_at_5k", "Fallback share at a 20 ms deadline, 5,000 orders/s", 0.1, "%",
     False),
)


def run_gateway(rig: Rig, workload: Workload, rates: tuple[float, ...] = (1_000, 5_000),
                step_s: float = 10.0, deadline_ms: float = 20.0, warm_orders: int = 3_000,
                log=print) -> dict:
    """Start a worker on its own topics, then measure every rate; the results as a dict."""
    settings = rig.topics("gateway")
    rig.load_context(settings, workload)
    t = time.monotonic()
    worker = rig.worker(settings, f"{settings.app_id}-w0")
    out: dict = {"deadline_ms": deadline_ms, "generous_ms": GENEROUS_MS, "step_s": step_s,
                 "steps": []}
    quiet = logging.getLogger("tradeguard.gateway")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # thousands of late-decision warnings: the steps count them
    try:
        # The worker signs with the development key; this rig trusts the topic (no ACLs to test).
        with GatewayClient(settings.with_(trust_unsigned_controls=True), mode="fail_open") as client:
            out["warm_up"] = _warm_up(client, workload, rig.tag, warm_orders, worker)
            out["worker_ready_s"] = round(time.monotonic() - t, 1)
            for rate in rates:
                for kind, deadline in (("generous", GENEROUS_MS), ("deadline", deadline_ms)):
                    step = asyncio.run(_step(client, workload, f"{kind}{int(rate)}-{rig.tag}",
                                             rate, step_s, deadline, worker))
                    step["kind"] = kind
                    out["steps"].append(step)
                    rt = step["round_trip"]
                    log(f"  gateway {kind:8s} {rate:>6,.0f}/s (sent {step['achieved_per_s']:,.0f}"
                        f"/s) deadline {deadline:g} ms: engine p50 {rt.get('p50_ms', '–')} ms, "
                        f"p99 {rt.get('p99_ms', '–')} ms, p99.9 {rt.get('p999_ms', '–')} ms; "
                        f"fallbacks {step['fallback_pct']:.2f}%")
    finally:
        quiet.setLevel(level)
    out["measured"] = measured(out)
    return out


def _warm_up(client: GatewayClient, workload: Workload, tag: str, orders: int, worker) -> dict:
    """The engine's first seconds (start-up, JIT, caches) at 1,000/s: reported, not a step."""
    warm = asyncio.run(_step(client, workload, f"warm{tag}", 1_000, orders / 1_000, 120_000.0,
                             worker))
    if warm["engine_answers"] < orders:
        raise RuntimeError(f"the engine answered {warm['engine_answers']} of {orders} warm-up "
                           f"orders; its log:\n{worker.log_tail()}")
    return warm


async def _step(client: GatewayClient, workload: Workload, run: str, rate: float,
                seconds: float, deadline_ms: float, worker) -> dict:
    count = max(1, int(rate * seconds))
    elapsed = np.zeros(count, dtype=np.int64)  # ns, submit to answer in hand
    with_engine = np.zeros(count, dtype=bool)  # the engine's decision was in hand
    fallback = np.zeros(count, dtype=bool)  # past the deadline: the mode's answer
    before = _counters(client)
    loop = asyncio.get_running_loop()

    async def one(i: int, order: dict) -> None:
        d = await client.submit_async(order, deadline_ms)
        elapsed[i] = int(d.elapsed_ms * 1e6)
        with_engine[i] = d.engine is not None
        fallback[i] = d.fallback is not None

    # Only the orders in flight are referenced, as in a gateway that forgets an order once
    # it is answered: holding every finished task would keep the answers alive and make the
    # garbage collector's pauses part of the figures.
    in_flight: set[asyncio.Task] = set()
    errors: list[BaseException] = []

    def finished(task: asyncio.Task) -> None:
        in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            errors.append(task.exception())

    cpu0, t0 = time.process_time(), loop.time()
    for i in range(count):
        delay = t0 + i / rate - loop.time()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        template = workload.orders[i % len(workload.orders)]
        order = {**template, "order_id": f"{run}-{i}", "ts": int(time.time() * 1000)}
        task = asyncio.ensure_future(one(i, order))
        in_flight.add(task)
        task.add_done_callback(finished)
    sent_s = loop.time() - t0
    while in_flight:
        await asyncio.wait(set(in_flight))
    if errors:
        raise errors[0]
    cpu_s = time.process_time() - cpu0
    load = os.getloadavg()[0]
    # The engine's late word on every fallback, before the next step begins.
    settle = time.monotonic() + 30
    while client.counts()["awaiting"] and time.monotonic() < settle and worker.alive:
        await asyncio.sleep(0.1)
    after = _counters(client)
    fallbacks = int(fallback.sum())
    return {
        "offered_per_s": rate, "deadline_ms": deadline_ms, "orders": count,
        "achieved_per_s": round(count / sent_s, 1) if sent_s > 0 else None,
        "engine_answers": int(with_engine.sum()), "fallbacks": fallbacks,
        "fallback_pct": round(100.0 * fallbacks / count, 3),
        # blocked at once by a halt or freeze the gateway holds: no engine wait, no fallback
        "control_blocks": int(count - with_engine.sum() - fallbacks),
        "round_trip": LatencyHistogram.from_ns(elapsed[with_engine]).summary(),
        "answered": LatencyHistogram.from_ns(elapsed).summary(),
        "late_decisions": after["late"] - before["late"],
        "late_disagreements": after["disagree"] - before["disagree"],
        "unreconciled": client.counts()["awaiting"],
        "gateway_cpu_us_per_order": round(cpu_s / count * 1e6, 1),
        "load_avg_1m": round(load, 2),
    }


def _counters(client: GatewayClient) -> dict[str, float]:
    total = 0.0
    for metric in client.metrics.late_disagreements.collect():
        total += sum(s.value for s in metric.samples if s.name.endswith("_total"))
    late = client.metrics.registry.get_sample_value("tradeguard_gateway_late_decisions_total")
    return {"late": int(late or 0), "disagree": int(total)}


def measured(result: dict) -> dict:
    """The figures behind ``TARGETS`` (None where the step did not run)."""
    def at(kind: str) -> dict:
        return next((s for s in result.get("steps", [])
                     if s["offered_per_s"] == 5_000 and s["kind"] == kind), {})

    return {"gateway_p99_ms_at_5k": at("generous").get("round_trip", {}).get("p99_ms"),
            "gateway_fallback_pct_at_5k": at("deadline").get("fallback_pct")}


def markdown(result: dict) -> str:
    """The section for the benchmark report."""
    lines = ["#### Gateway: submit → decision in hand (GatewayClient, one worker)", "",
             f"Round trip: submit to the engine's decision in hand. Fallbacks: answered by the "
             f"mode at the step's deadline. Worker ready after {result.get('worker_ready_s', '–')}"
             f" s; the gateway process (pacing + client) shares the machine.", "",
             "| offered/s | sent/s | deadline ms | p50 ms | p99 ms | p99.9 ms | max ms | fallbacks "
             "| blocked by controls | late disagreements | gateway CPU µs/order | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in result.get("steps", []):
        rt = s["round_trip"]
        lines.append(
            f"| {s['offered_per_s']:,.0f} | {s['achieved_per_s']:,.0f} | {s['deadline_ms']:g} "
            f"| {rt.get('p50_ms', '–')} | {rt.get('p99_ms', '–')} | {rt.get('p999_ms', '–')} "
            f"| {rt.get('max_ms', '–')} | {s['fallbacks']:,} ({s['fallback_pct']:.2f}%) "
            f"| {s['control_blocks']:,} | {s['late_disagreements']:,} | {s['gateway_cpu_us_per_order']} "
            f"| {s['load_avg_1m']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gateway",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2.5 s steps, 2,000 accounts")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--broker", choices=("kafka", "tansu"), default="kafka")
    args = parser.parse_args(argv)
    workload = Workload.build(accounts=2_000 if args.quick else 20_000,
                              orders=20_000 if args.quick else 100_000, seed=11)
    started = datetime.now(timezone.utc)
    with Rig(broker=args.broker) as rig:
        result = run_gateway(rig, workload, step_s=2.5 if args.quick else 10.0)
    result["command"] = "python -m benchmarks.gateway" + " ".join([""] + (argv or sys.argv[1:]))
    table = markdown(result)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{started:%Y%m%dT%H%M%SZ}-gateway.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print("\n" + table + f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
