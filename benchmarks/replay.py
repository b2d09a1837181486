"""Replay speed: recorded orders with their logins, trades and labels, read back from Kafka.

    python -m benchmarks.replay            # both workloads (a few minutes)
    python -m benchmarks.replay --quick    # the full-day workload only
    python -m benchmarks.replay --quick --provenance   # and the exact replay of a worker's steps

Each workload is a simulated session (``tradeguard.simulator``) written to its own
topic set on the embedded broker with 8 partitions, the production default, in
event-time order, as gateways would have written it; the decisions topic gets
what an in-process engine decided (``InProcessEngine.run``), so the replay reads
and compares a published decision for every order. Then ``tradeguard replay``
runs with the live policy over the session, warm-up from the oldest record
(``--lead-in all``): the figure is every record it reads and feeds to the core
(warm-up included) per second of its wall time, reading from Kafka, decoding,
merging, deciding, comparing and writing nothing but the report.

- ``full-day``: ``scenarios/full-day.toml`` as shipped: a mid-sized broker's day
  (25k orders, ~4 trades and ~1 login event per order, five warm-up days).
- ``dense``: a busy session: 32,000 accounts, about 4,700 orders a minute for
  fifteen minutes after a one-day warm-up (104k orders, 108k trades, 220k logins).

The target (issue 13) is 50,000 orders per second with their other records. The
time by stage (``seconds_by_stage`` in the replay report) says where it goes.
Results: ``benchmarks/results/replay-<UTC time>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import time
import tomllib
import uuid
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.report import machine
from streams.wire import encode_decisions
from tradeguard.kafka.admin import create_topics
from tradeguard.broker.clients import GatewayProducer
from tradeguard.broker.embedded import EmbeddedBroker
from tradeguard.core import InProcessEngine, typed
from tradeguard.policy.config import PolicyConfig
from tradeguard.replay.run import ReplayRequest, replay
from tradeguard.replay.window import ReplayWindow
from tradeguard.runtime.settings import Settings
from tradeguard.simulator import Session, generate, load_scenario, parse_scenario

__all__ = ["main", "run_workload"]

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
TARGET_ORDERS_PER_S = 50_000
PARTITIONS = 8

DENSE = """
name = "dense"
description = "a busy session: ~4,700 orders a minute"
seed = 7
[session]
open = 2025-04-16T09:00:00+09:00
duration_s = 900
[warmup]
days = 1
[population]
activity_scale = 60.0
index_holders = { count = 20000 }
active_traders = { count = 10000 }
day_traders = { count = 2000 }
[[campaigns]]
name = "pump"
start_s = 300
accesses = 30
trade_rate = 0.44
targets = [{ tier = "penny", count = 1 }]
"""


def _record(settings: Settings, session: Session) -> dict[str, int]:
    """Write the session's inputs, and an in-process engine's decisions, to the topics."""
    gateway = GatewayProducer(settings, **{"linger.ms": 20, "batch.num.messages": 10_000,
                                           "queue.buffering.max.messages": 1_000_000})
    for name, record in session.records:
        gateway.send(name, record)
    engine = InProcessEngine(PolicyConfig.defaults(), partitions=PARTITIONS,
                             home_market=settings.home_market,
                             anomaly_window=settings.anomaly_window)
    decided = 0
    now = int(time.time() * 1000)
    for out in engine.run([(n, typed(n, r)) for n, r in session.records], 1 << 16):
        block = out.decisions
        for key, value in zip(block.account_id, encode_decisions(block, now)):
            gateway.send("decisions", value, key=key)
        decided += len(block)
    gateway.flush(120)
    return {**session.counts(), "decisions": decided}


def run_workload(broker_url: str, name: str, session: Session, profile: str) -> dict:
    """One workload: written to a fresh topic set, then replayed; the replay's speed figures."""
    tag = uuid.uuid4().hex[:8]
    settings = Settings.from_env(env={}, broker=broker_url, broker_profile=profile,
                                 topic_prefix=f"bench-replay-{tag}.",
                                 partitions=PARTITIONS, max_event_age_s=0)
    create_topics(settings)
    started = time.monotonic()
    written = _record(settings, session)
    written_s = time.monotonic() - started
    window = ReplayWindow.parse(str(session.open_ms), str(session.close_ms), "all")
    policy = PolicyConfig.defaults()
    report = replay(settings, ReplayRequest(window, policy, policy), progress=False)
    speed = report["speed"]
    return {"workload": name, "written": written, "write_seconds": round(written_s, 1),
            "partitions": PARTITIONS, **speed,
            "compared": report["comparison"]["orders"]["compared"],
            "identical": report["comparison"]["orders"]["identical"],
            "warmup_compared": report["comparison"]["warmup"]["compared"]}


def run_provenance(broker_url: str, name: str, session: Session, log: Path,
                   profile: str) -> dict:
    """The exact replay's speed: a real worker decides the session from a backlog, stamping
    its steps; then every step is read back and fed again (tradeguard/replay/provenance.py)."""
    from tradeguard.broker.clients import TopicReader
    from tradeguard.broker.embedded import free_port
    from tradeguard.broker.worker_process import WorkerProcess
    from tradeguard.replay import provenance

    tag = uuid.uuid4().hex[:8]
    settings = Settings.from_env(env={}, broker=broker_url, broker_profile=profile,
                                 topic_prefix=f"bench-prov-{tag}.",
                                 app_id=f"bench-prov-{tag}", partitions=PARTITIONS,
                                 max_event_age_s=0, web_port=free_port(), web_host="127.0.0.1")
    create_topics(settings)
    gateway = GatewayProducer(settings, **{"linger.ms": 20, "batch.num.messages": 10_000,
                                           "queue.buffering.max.messages": 1_000_000})
    for topic_name, record in session.records:
        gateway.send(topic_name, record)
    gateway.flush(120)
    orders = session.counts().get("orders", 0)
    started = time.monotonic()
    worker = WorkerProcess(settings, log).start()
    seen: set[str] = set()
    try:
        with TopicReader(settings, "decisions") as reader:
            while len(seen) < orders:
                assert worker.alive, worker.log_tail()
                assert time.monotonic() - started < 900, f"{len(seen)}/{orders} decided"
                seen.update(d["order_id"] for _, d in reader.poll(0.5))
    finally:
        worker.stop()
    live_s = time.monotonic() - started
    t0 = time.perf_counter()
    recorded = provenance.read(settings)
    read_s = time.perf_counter() - t0
    result = provenance.replay_steps(settings, PolicyConfig.defaults(), recorded)
    seconds = time.perf_counter() - t0
    return {"workload": name, "orders": orders, "records": recorded["records"],
            "live_seconds": round(live_s, 1), "seconds": round(seconds, 2),
            "orders_per_s": round(orders / seconds, 1),
            "records_per_s": round(recorded["records"] / seconds, 1),
            "seconds_by_stage": {"read_and_decode": round(read_s, 2),
                                 **{k: v for k, v in result["seconds"].items()},
                                 "compare": round(result["seconds_total"]
                                                  - sum(result["seconds"].values()), 2)},
            "steps": result["steps"], "compared": result["compared"],
            "identical": result["identical"], "cost": result["cost"]}


def markdown(results: dict) -> str:
    lines = [f"# Replay speed, {results['started']}", "",
             f"{results['machine']['cores']} cores ({results['machine']['cpu_model']}), "
             f"load at start {results['machine']['load_avg_start']}, commit "
             f"`{results['machine']['commit']}`; embedded broker, clients with broker profile "
             f"`{results.get('broker_profile', 'kafka')}`, {PARTITIONS} partitions; "
             "`tradeguard replay --lead-in all` with the live policy, reading from Kafka.", "",
             "| workload | records | orders | seconds | records/s | orders/s | target "
             f"{TARGET_ORDERS_PER_S:,} orders/s | seconds by stage |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results["workloads"]:
        ratio = r["orders_per_s"] / TARGET_ORDERS_PER_S
        status = ("met" if ratio >= 1 else f"missed ({1 / ratio:.1f}x short)")
        stages = ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in
                           r["seconds_by_stage"].items())
        lines.append(f"| {r['workload']} | {r['records']:,} | {r['orders']:,} | {r['seconds']} | "
                     f"{r['records_per_s']:,.0f} | {r['orders_per_s']:,.0f} | {status} | "
                     f"{stages} |")
    return "\n".join(lines) + "\n"


def _print(name: str, result: dict) -> None:
    print(f"{name}: {result['orders']:,} orders, {result['records']:,} records in "
          f"{result['seconds']} s: {result['orders_per_s']:,.0f} orders/s "
          f"({result['records_per_s']:,.0f} records/s); by stage "
          f"{result['seconds_by_stage']}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replay",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the full-day workload only")
    parser.add_argument("--provenance", action="store_true",
                        help="also the exact replay of a real worker's steps (full-day)")
    parser.add_argument("--out", default=str(RESULTS), help="results directory")
    args = parser.parse_args(argv)
    workloads = {"full-day": lambda: generate(load_scenario(REPO / "scenarios" / "full-day.toml"))}
    if not args.quick:
        workloads["dense"] = lambda: generate(parse_scenario(tomllib.loads(DENSE)))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    results = {"started": stamp, "machine": machine(), "workloads": []}
    with EmbeddedBroker() as broker:
        results["broker_profile"] = broker.profile
        for name, make in workloads.items():
            print(f"{name}: generating", flush=True)
            result = run_workload(broker.url, name, make(), broker.profile)
            results["workloads"].append(result)
            _print(name, result)
        if args.provenance:
            name = "full-day, exact (provenance of a worker's steps)"
            print(f"{name}: generating; a worker decides it", flush=True)
            Path(args.out).mkdir(parents=True, exist_ok=True)
            result = run_provenance(broker.url, name, workloads["full-day"](),
                                    Path(args.out) / "replay-provenance-worker.log",
                                    broker.profile)
            results["workloads"].append(result)
            _print(name, result)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"replay-{stamp}.json").write_text(json.dumps(results, indent=2))
    (out / f"replay-{stamp}.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
