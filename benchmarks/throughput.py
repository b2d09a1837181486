"""Flat-out throughput on a preloaded backlog: the engine (one and two workers) against its peers.

Every contender gets its own topic set holding the same input (the logins and
trades, then the same N orders, written by the producer process before the
contender starts), reads it from the earliest offset in a fresh consumer
group and writes one record per order to its ``decisions`` topic. Nothing else
runs meanwhile, so the rate is the contender's alone: decided orders per
second over the middle 90% of the decisions (start-up and the last straggling
batch excluded). Every order must come back: distinct order ids are counted.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np

from benchmarks.profile import py_spy, summarize
from benchmarks.rig import REPO, Child, Rig, rss_bytes
from benchmarks.stats import middle_rate
from benchmarks.workload import Workload

__all__ = ["quix_python", "run_throughput"]

QUIX_SCRIPT = REPO / "benchmarks" / "peers" / "quix_passthrough.py"


def quix_python() -> str | None:
    """An interpreter that can import quixstreams: ours, or $TRADEGUARD_BENCH_QUIX_PYTHON."""
    for python in (sys.executable, os.environ.get("TRADEGUARD_BENCH_QUIX_PYTHON")):
        if python and shutil.which(python) and subprocess.run(
                [python, "-c", "import quixstreams"], capture_output=True).returncode == 0:
            return python
    return None


def run_throughput(rig: Rig, workload: Workload, spec: dict, orders: int,
                   contenders: list[str], profile: bool = False, log=print) -> dict:
    """contenders: any of "tradeguard", "tradeguard_x2", "quix", "faust_naive".

    With ``profile``, py-spy samples the one-worker engine while it drains the
    backlog; its summary is under ``["tradeguard"]["profile"]``.
    """
    out: dict = {}
    for name in contenders:
        t = time.monotonic()
        try:
            out[name] = _contend(rig, name, workload, spec, orders,
                                 profile=profile and name == "tradeguard")
        except _Skipped as exc:
            out[name] = {"skipped": str(exc)}
        r = out[name]
        line = (f"skipped: {r['skipped']}" if "skipped" in r else
                f"{r['orders_per_s']:,.0f} orders/s, {r['decided']}/{orders} decided "
                f"({r['duplicates']} duplicates), ready after {r['startup_s']} s, "
                f"load {r['load_avg_1m']}")
        log(f"  {name}: {line}  [{time.monotonic() - t:.0f} s]")
    return out


class _Skipped(Exception):
    pass


def _contend(rig: Rig, name: str, workload: Workload, spec: dict, orders: int,
             profile: bool = False) -> dict:
    settings = rig.topics(name)
    rig.load_context(settings, workload)
    run = f"tp{rig.tag}"
    loader = rig.produce(settings, run, count=orders, rate=0, workload_spec=spec)
    if loader.process.wait(120) != 0:
        raise RuntimeError(f"loading {name}'s input failed:\n{loader.log_tail()}")
    collector = rig.collector(settings)
    collector.expect(run, orders)
    started = time.monotonic_ns()
    if name in ("tradeguard", "tradeguard_x2"):
        procs = [rig.worker(settings, f"{name}-w{k}") for k in range(2 if name.endswith("x2") else 1)]
        pids = [p.process.pid for p in procs]
    elif name == "faust_naive":
        procs = [rig.child(name, [sys.executable, "-m", "benchmarks.peers.faust_naive",
                                  settings.broker, settings.topic_prefix, settings.app_id])]
        pids = [p.pid for p in procs]
    elif name == "quix":
        python = quix_python()
        if python is None:
            raise _Skipped("quixstreams is not installed (pip install -e '.[bench]', or set "
                           "TRADEGUARD_BENCH_QUIX_PYTHON to an interpreter that has it)")
        state = rig.workdir / name / "quix-state"
        state.mkdir(parents=True, exist_ok=True)
        procs = [rig.child(name, [python, str(QUIX_SCRIPT), settings.bootstrap_servers,
                                  settings.topic_prefix, settings.app_id, str(state)])]
        pids = [p.pid for p in procs]
    else:
        raise ValueError(f"unknown contender {name!r}")
    rss_peak = {pid: 0 for pid in pids}

    def alive() -> bool:
        for pid in pids:
            rss_peak[pid] = max(rss_peak[pid], rss_bytes(pid) or 0)
        return all(p.process.poll() is None for p in procs)

    # Start-up (Faust group join, Numba cache load) counts as "busy" until the first decision.
    collector.wait(run, timeout_s=120, stall_s=5, busy=alive, until_first=True)
    spy = _start_profiler(rig, name, pids[0]) if profile else None
    collector.wait(run, timeout_s=120 + orders / 500, stall_s=20)
    profiled = _stop_profiler(spy)
    recv = collector.runs[run]
    done = recv > 0
    alive()  # RSS once more, at the end: state only grows
    for p in procs:
        p.stop()
    if not done.any():
        tails = "\n".join(p.log_tail() for p in procs)
        raise RuntimeError(f"{name} decided nothing; its log:\n{tails}")
    decided = np.sort(recv[done])
    return {
        "orders": orders, "decided": int(done.sum()), "missing": int((~done).sum()),
        "duplicates": collector.duplicates, "processes": len(procs),
        "orders_per_s": round(middle_rate(decided), 1),
        "orders_per_s_first_to_last": round(
            (len(decided) - 1) / max((decided[-1] - decided[0]) / 1e9, 1e-9), 1),
        "startup_s": round((decided[0] - started) / 1e9, 2),
        "rss_peak_bytes": sum(rss_peak.values()),
        "actions": dict(collector.actions),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        **({"profile": profiled} if profiled else {}),
    }


def _start_profiler(rig: Rig, name: str, pid: int) -> Child | None:
    spy = py_spy()
    if spy is None:
        return None
    out = rig.workdir / f"{name}.pyspy.txt"
    return rig.child(f"{name}-py-spy", [spy, "record", "--pid", str(pid), "--format", "raw",
                                        "--output", str(out), "--rate", "200", "--nonblocking"])


def _stop_profiler(spy: Child | None) -> dict | None:
    if spy is None:
        return None
    spy.stop(sig=signal.SIGINT)  # py-spy writes its samples on Ctrl-C
    out = spy.log_path.with_name(spy.log_path.name.replace("-py-spy.log", ".pyspy.txt"))
    if not out.exists():
        return {"error": "py-spy wrote nothing: " + spy.log_tail(3)}
    return summarize(out.read_text().splitlines())
