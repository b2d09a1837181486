"""``python -m benchmarks [--quick]``: every measurement of issue 5 in one run, and the report.

Order of work: the in-process parts first (cost per stage, memory per
account), while nothing else of ours runs; then one embedded broker for the
end-to-end latency steps and the throughput contest. Results land in
``benchmarks/results/<UTC timestamp>.json`` with a Markdown table and PNG
plots beside it; the table is also printed.

Exit status: 0 when every part ran and every order got its decision; 1 when a
part broke or an order went undecided. A slow or noisy figure never fails it:
the targets are reported, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from benchmarks import report
from benchmarks.cost import run_cost
from benchmarks.e2e import run_e2e
from benchmarks.gateway import run_gateway
from benchmarks.memory import run_memory
from benchmarks.mixed import run_mixed
from benchmarks.rig import Rig
from benchmarks.throughput import quix_python, run_throughput
from benchmarks.workload import Workload
from tradeguard.runtime.signals import Terminated, stop_on_signals

PARTS = ("cost", "memory", "e2e", "throughput", "mixed", "gateway")
CONTENDERS = ("tradeguard", "quix", "faust_naive", "tradeguard_x2")


@dataclass(frozen=True)
class Plan:
    """How much of everything one mode does."""

    accounts: int
    templates: int
    cost_orders: int
    memory_sizes: tuple[int, ...]
    mixed_orders: int
    rates: tuple[float, ...]  # 0 = flat out
    step_s: float
    flat_count: int
    backlog: int


QUICK = Plan(accounts=2_000, templates=20_000, cost_orders=5_000,
             memory_sizes=(100_000, 1_000_000), mixed_orders=10_000, rates=(1_000, 5_000, 0), step_s=2.5,
             flat_count=10_000, backlog=15_000)
FULL = Plan(accounts=20_000, templates=100_000, cost_orders=20_000,
            memory_sizes=(100_000, 1_000_000), mixed_orders=100_000, rates=(1_000, 5_000, 10_000, 20_000, 0),
            step_s=10.0, flat_count=100_000, backlog=100_000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the CI mode: under 3 minutes")
    parser.add_argument("--only", default=",".join(PARTS),
                        help=f"comma-separated parts to run (default: all of {','.join(PARTS)})")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results",
                        help="where the JSON, Markdown and PNGs go")
    parser.add_argument("--broker", choices=("kafka", "tansu", "both"), default="kafka",
                        help="which broker the end-to-end, throughput, mixed and gateway parts run "
                             "on: Apache Kafka (default), the embedded Tansu, or both in one run")
    parser.add_argument("--profile", action="store_true",
                        help="sample the one-worker engine with py-spy during the throughput run")
    args = parser.parse_args(argv)
    parts = [p for p in args.only.split(",") if p]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts {unknown}; choose from {list(PARTS)}")
    plan = QUICK if args.quick else FULL
    try:
        with stop_on_signals():  # SIGTERM unwinds like Ctrl-C: the rig stops what it started
            brokers = ["kafka", "tansu"] if args.broker == "both" else [args.broker]
            return run(plan, parts, args.out, args.profile, brokers,
                       command="python -m benchmarks" + " ".join([""] + (argv or sys.argv[1:])))
    except Terminated as exc:
        return exc.exit_status


def run(plan: Plan, parts: list[str], out_dir: Path, profile: bool, brokers: list[str],
        command: str) -> int:
    started = datetime.now(timezone.utc)
    t0 = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f}s] {msg}", flush=True)

    quix = quix_python()
    results: dict = {
        "started_utc": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "mode": "quick" if plan is QUICK else "full", "command": command,
        "plan": plan.__dict__, "machine": report.machine(_quix_version(quix)), "errors": [],
    }
    spec = {"accounts": plan.accounts, "templates": plan.templates, "seed": 11,
            "now_ms": int(time.time() * 1000)}
    workload = Workload.build(accounts=plan.accounts, orders=plan.templates, seed=spec["seed"],
                              now_ms=spec["now_ms"])

    def part(name: str, fn) -> None:
        if name not in parts:
            return
        log(f"{name} ...")
        try:
            results[name] = fn()
        except Exception as exc:  # the report says which part broke, and the exit status
            results["errors"].append(f"{name}: {type(exc).__name__}: {exc}")
            log(f"{name} FAILED:\n{traceback.format_exc()}")

    part("cost", lambda: run_cost(workload, orders=plan.cost_orders, log=log))
    part("memory", lambda: run_memory(plan.memory_sizes, log=log))
    # The broker-backed parts once per broker, each on a fresh broker; their results nest
    # under results["brokers"][name], the in-process parts stay at the top.
    results["brokers"] = {}
    for name in brokers if {"e2e", "throughput", "mixed", "gateway"} & set(parts) else []:
        sub: dict = {"errors": results["errors"]}
        with Rig(broker=name) as rig:
            log(f"{name} broker {rig.broker.url}, logs in {rig.workdir}")
            sub_part = _nested(part, sub, results)
            sub_part("e2e", lambda: run_e2e(rig, workload, spec, list(plan.rates), plan.step_s,
                                            plan.flat_count, log=log))
            if name == "kafka" and "e2e" in parts:
                # The same steps at least once: what the transactions cost (docs/architecture).
                log("e2e at least once ...")
                rig.guarantee = "at_least_once"
                try:
                    sub["e2e_at_least_once"] = run_e2e(rig, workload, spec, list(plan.rates),
                                                       plan.step_s, plan.flat_count, log=log)
                except Exception as exc:  # reported, like any part
                    results["errors"].append(f"{name} e2e at least once: {exc}")
                finally:
                    rig.guarantee = "auto"
            sub_part("throughput", lambda: run_throughput(rig, workload, spec, plan.backlog,
                                                          list(CONTENDERS), profile=profile,
                                                          log=log))
            sub_part("mixed", lambda: run_mixed(rig, workload, plan.mixed_orders, log=log))
            sub_part("gateway", lambda: run_gateway(rig, workload, rates=(1_000, 5_000),
                                                    step_s=plan.step_s, log=log))
        sub.pop("errors")
        results["brokers"][name] = sub
    results["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["elapsed_s"] = round(time.monotonic() - t0, 1)
    for name, sub in results["brokers"].items():
        if sub.get("throughput", {}).get("tradeguard", {}).get("profile"):
            sub["profile"] = sub["throughput"]["tradeguard"]["profile"]
        sub["targets"] = report.targets({**results, **sub})
        missing = _missing(sub)
        if missing:
            results["errors"].append(f"{name}: {missing} orders got no decision")

    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / started.strftime("%Y%m%dT%H%M%SZ")
    results["plots"] = report.plot(results, stem)
    table = report.markdown(results)
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1, default=_plain) + "\n")
    stem.with_suffix(".md").write_text(table)
    print("\n" + table, flush=True)
    log(f"wrote {stem}.json, {stem}.md" + "".join(f", {p}" for p in results["plots"]))
    return 1 if results["errors"] else 0


def _nested(part, sub: dict, results: dict):
    """``part`` that stores its result in ``sub`` (one broker's results) instead of the top."""
    def run_part(name: str, fn) -> None:
        part(name, fn)
        if name in results:
            sub[name] = results.pop(name)
    return run_part


def _missing(results: dict) -> int:
    n = results.get("e2e", {}).get("missing_decisions", 0)
    for r in results.get("throughput", {}).values():
        n += r.get("missing", 0)
    return n + results.get("mixed", {}).get("missing", 0)


def _plain(value):
    """JSON for NumPy scalars."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _quix_version(python: str | None) -> str | None:
    if python is None:
        return None
    done = subprocess.run([python, "-c", "import quixstreams; print(quixstreams.__version__)"],
                          capture_output=True, text=True)
    return done.stdout.strip() or None


if __name__ == "__main__":
    sys.exit(main())
