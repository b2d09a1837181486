"""The results: machine and versions, the targets of issue 5, the Markdown table and the plots.

Pure functions of the results dict (the plots excepted, which need
matplotlib: the optional ``bench`` extra); ``tests/benchmarks`` checks the
shapes on a canned result.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from tradeguard.kafka.profiles import profile

__all__ = ["machine", "markdown", "plot", "targets"]

PACKAGES = ("faust-streaming", "aiokafka", "confluent-kafka", "numba", "numpy", "river", "orjson",
            "quixstreams", "matplotlib", "psutil")

#: The targets (issue 19, measured on Apache Kafka; the gateway's from benchmarks/gateway.py):
#: (key, what, goal, unit, higher is better).
TARGETS = (
    ("ratio_to_quix", "Flat out, full scoring, one worker: ahead of the Quix Streams pass-through",
     1.0, "x", True),
    ("ratio_to_faust_naive", "Flat out, full scoring, one worker: 10x the naive Faust agent",
     10.0, "x", True),
    ("mixed_orders_per_s", "Full-day record mix flat out (4 trades + 1 login per order, labels, "
     "flow)", 20_000, "orders/s", True),
    ("p99_ms_at_1k", "Produce-to-decision p99 at 1,000 orders/s", 10.0, "ms", False),
    ("p99_ms_at_5k", "Produce-to-decision p99 at 5,000 orders/s", 15.0, "ms", False),
    ("p999_ms_at_5k", "Produce-to-decision p99.9 at 5,000 orders/s", 30.0, "ms", False),
    ("p99_ms_at_20k", "Produce-to-decision p99 at 20,000 orders/s, sustained", 50.0, "ms", False),
    ("worker_ready_s", "First decision after a worker starts (warm cache)", 3.0, "s", False),
    ("worker_total_us", "Whole in-worker cost per order at batch 1024 (decode, columns, "
     "features, models, policy, records, encode)", 5.0, "µs", False),
    ("bytes_per_account", "Feature state per tracked account (1M accounts)", 512, "B", False),
)


def machine(quix_version: str | None = None) -> dict:
    """Cores, CPU model, load, OS, Python and the versions of everything measured."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    if quix_version and not versions["quixstreams"]:
        versions["quixstreams"] = f"{quix_version} (separate interpreter)"
    try:
        commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                                text=True, cwd=Path(__file__).parents[1], timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"cores": os.cpu_count(), "cpu_model": model, "platform": platform.platform(),
            "python": platform.python_version(), "versions": versions, "commit": commit,
            "load_avg_start": [round(x, 2) for x in os.getloadavg()]}


def _measured(results: dict) -> dict:
    """The figure behind each target, or None where that part did not run."""
    tp = results.get("throughput", {})
    ours = tp.get("tradeguard", {}).get("orders_per_s")

    def ratio(peer: str):
        theirs = tp.get(peer, {}).get("orders_per_s")
        return round(ours / theirs, 3) if ours and theirs else None

    steps = results.get("e2e", {}).get("steps", [])
    at5k = next((s for s in steps if s.get("offered_per_s") == 5000), {})
    at1k = next((s for s in steps if s.get("offered_per_s") == 1000), {})
    at20k = next((s for s in steps if s.get("offered_per_s") == 20000), {})
    cost = results.get("cost", {}).get("batch_sizes", {}).get("1024", {})
    mem = results.get("memory", {})
    biggest = mem[max(mem, key=int)] if mem else {}
    out = {"orders_per_s_per_worker": ours, "ratio_to_quix": ratio("quix"),
           "ratio_to_faust_naive": ratio("faust_naive"),
           "mixed_orders_per_s": results.get("mixed", {}).get("orders_per_s"),
           "p99_ms_at_5k": at5k.get("p99_ms") if at5k.get("sustained") else None,
           "p999_ms_at_5k": at5k.get("p999_ms") if at5k.get("sustained") else None,
           "p99_ms_at_1k": at1k.get("p99_ms"),
           "p99_ms_at_20k": at20k.get("p99_ms") if at20k.get("sustained") else None,
           "worker_ready_s": results.get("e2e", {}).get("first_decision_s"),
           "worker_total_us": cost.get("worker_total_us_per_order"),
           "bytes_per_account": biggest.get("bytes_per_account")}
    if results.get("gateway"):
        from benchmarks import gateway

        out.update(gateway.measured(results["gateway"]))
    return out


def targets(results: dict) -> list[dict]:
    """Each target with its measured value, met or missed, and by how much.

    >>> t = targets({"memory": {"1000000": {"bytes_per_account": 256}}})
    >>> [(r["key"], r["status"], r["by"]) for r in t if r["measured"] is not None]
    [('bytes_per_account', 'met', '2.00x under')]
    """
    measured = _measured(results)
    rows = []
    from benchmarks import gateway

    extra = gateway.TARGETS if results.get("gateway") else ()
    for key, what, goal, unit, higher in TARGETS + tuple(extra):
        value = measured[key]
        row = {"key": key, "target": what, "goal": goal, "unit": unit,
               "goal_text": f"{'>=' if higher else '<='} {goal:g} {unit}", "measured": value}
        if value is None:
            row.update(status="not measured", by="")
        else:
            met = value >= goal if higher else value <= goal
            factor = (value / goal if met else goal / value) if higher else (
                goal / value if met else value / goal)
            word = ("over" if met else "short") if higher else ("under" if met else "over")
            row.update(status="met" if met else "missed",
                       by=f"{factor:.2f}x {word}" if value else "")
        rows.append(row)
    return rows


def _f(x, fmt="{:,.1f}") -> str:
    return "–" if x is None or x == "" else fmt.format(x) if isinstance(x, (int, float)) else str(x)


BROKER_NAMES = {"kafka": "Apache Kafka (single node, KRaft, on the JDK)",
                "tansu": "the embedded Tansu (in memory)"}


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [f"## TradeGuard benchmark, {results['started_utc']} ({results['mode']})", "",
             f"`{results['command']}` on {m['cores']} cores ({m['cpu_model']}), Python "
             f"{m['python']}, commit {m['commit'] or '?'}; load average {m['load_avg_start']} at "
             f"start, {results.get('load_avg_end')} at end (other work shares this machine: "
             "figures are noisy).", ""]
    for name, sub in results.get("brokers", {}).items():
        lines += _broker_markdown(name, sub)
    cost = results.get("cost")
    if cost:
        cols = ("decode", "columns", "features", "models", "policy", "records", "core",
                "encode", "worker_total")
        lines += ["", "### In the worker: µs per order by stage (in process, after warm-up)", "",
                  "| batch | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        for size, r in cost["batch_sizes"].items():
            lines.append(f"| {size} | " + " | ".join(
                _f(r.get(f"{c}_us_per_order"), "{:.2f}") for c in cols) + " |")
        lines += ["", "`core` = `PartitionCore.process` = columns + features + models + policy + "
                  "records (reasons, controls, decision and flow blocks); `worker_total` = decode "
                  "+ core + encode (everything but the Kafka client calls)."]
    mem = results.get("memory")
    if mem:
        lines += ["", "### Memory per tracked account", "",
                  "| accounts | feature state B | allocated B | RSS growth B (with ids) "
                  "| snapshot B | models (shared) |", "|---|---|---|---|---|---|"]
        for n, r in mem.items():
            models = ", ".join(f"{k[6:-6]} {v / 1024:.0f} KiB" for k, v in r.items()
                               if k.startswith("model_"))
            lines.append(f"| {int(n):,} | {r['bytes_per_account']} | {r['array_bytes_per_account']} "
                         f"| {r['rss_bytes_per_account']} | {r['snapshot_bytes_per_account']} "
                         f"| {models} |")
    if results.get("errors"):
        lines += ["", "### Errors", ""] + [f"- {e}" for e in results["errors"]]
    return "\n".join(lines) + "\n"




def _e2e_markdown(e2e: dict | None, guarantee: str) -> list[str]:
    """One end-to-end table (a broker, a processing guarantee)."""
    if not e2e:
        return []
    lines: list[str] = []
    floor = e2e.get("broker_floor", {})
    lines += ["", f"### End to end, {guarantee}: produce → decision consumed (one worker, "
              "full scoring)", "",
              f"Broker floor (one hop, produce → consume, no worker): p50 "
              f"{_f(floor.get('p50_ms'), '{:.2f}')} ms, p99 {_f(floor.get('p99_ms'), '{:.2f}')}"
              f" ms (after the first second of the run: p99 "
              f"{_f(floor.get('after_first_second', {}).get('p99_ms'), '{:.2f}')} ms)."
              f" First decision {_f(e2e.get('first_decision_s'), '{:.1f}')} s after the "
              f"worker started. Highest sustained offered rate: "
              f"{_f(e2e.get('max_sustained_offered_per_s'), '{:,.0f}')} orders/s.", "",
              "| offered/s | decided/s | p50 ms | p99 ms | p99.9 ms | max ms | p50 / p99 ms after "
              "the first second | backlog mid → end | sustained | worker RSS MB | load |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in e2e["steps"]:
        lag = f"{s['lag_mid']:,} → {s['lag_end']:,}" if "lag_mid" in s else "–"
        lines.append(
            f"| {_f(s['offered_per_s'], '{:,.0f}')} | {_f(s.get('decided_per_s'), '{:,.0f}')} "
            f"| {_f(s.get('p50_ms'), '{:.2f}')} | {_f(s.get('p99_ms'), '{:.2f}')} "
            f"| {_f(s.get('p999_ms'), '{:.2f}')} | {_f(s.get('max_ms'), '{:.1f}')} "
            f"| {_f(s.get('after_first_second', {}).get('p50_ms'), '{:.2f}')} / "
            f"{_f(s.get('after_first_second', {}).get('p99_ms'), '{:.2f}')} | {lag} "
            f"| {'yes' if s.get('sustained') else 'no'} "
            f"| {_f((s.get('worker_rss_bytes') or 0) / 2**20, '{:.0f}')} | {s['load_avg_1m']} |")
    return lines


def _broker_markdown(name: str, results: dict) -> list[str]:
    """One broker's sections: its targets, end to end, throughput, the mix, the gateway."""
    lines = ["", f"## On {BROKER_NAMES.get(name, name)}", ""]
    lines += ["### Targets", "", "| target | goal | measured | status |", "|---|---|---|---|"]
    for t in results.get("targets", []):
        lines.append(f"| {t['target']} | {t['goal_text']} | {_f(t['measured'], '{:,.2f}')} "
                     f"{t['unit'] if t['measured'] is not None else ''} | {t['status']}"
                     f"{' (' + t['by'] + ')' if t['by'] else ''} |")
    # The first part runs the broker profile's own guarantee (``auto``): at least once on
    # both brokers since transactions became opt-in (tradeguard/kafka/profiles.py), so on
    # Kafka the two parts measure the same guarantee twice. Before 8 December this title
    # said "exactly once" for Kafka's first part, which it no longer was.
    default = "exactly once" if profile(name).transactions else "at least once"
    for key, title in (("e2e", f"{default} (the broker profile's default)"),
                       ("e2e_at_least_once", "at least once, set explicitly")):
        lines += _e2e_markdown(results.get(key), title)

    tp = results.get("throughput")
    if tp:
        ours = tp.get("tradeguard", {}).get("orders_per_s")
        lines += ["", "### Throughput on a preloaded backlog (same input, same broker)", "",
                  "| contender | orders/s | tradeguard ÷ it | decided | duplicates | ready after s "
                  "| RSS MB | load |", "|---|---|---|---|---|---|---|---|"]
        for name, r in tp.items():
            if "skipped" in r:
                lines.append(f"| {name} | skipped: {r['skipped']} | | | | | | |")
                continue
            ratio = ours / r["orders_per_s"] if ours and r.get("orders_per_s") else None
            lines.append(f"| {name} | {_f(r['orders_per_s'], '{:,.0f}')} | {_f(ratio, '{:.2f}')} "
                         f"| {r['decided']:,}/{r['orders']:,} | {r['duplicates']} "
                         f"| {r['startup_s']} | {_f(r['rss_peak_bytes'] / 2**20, '{:.0f}')} "
                         f"| {r['load_avg_1m']} |")
    mixed = results.get("mixed")
    if mixed:
        lines += ["", "### Full-day record mix, flat out (one worker)", "",
                  f"{mixed['orders']:,} orders with {mixed['records_per_order']} input records per "
                  f"order ({', '.join(f'{k} {v:,}' for k, v in mixed['records'].items())}), "
                  "preloaded in event-time order: "
                  f"**{_f(mixed['orders_per_s'], '{:,.0f}')} orders/s** "
                  f"({_f(mixed['input_records_per_s'], '{:,.0f}')} input records/s), "
                  f"{mixed['decided']:,}/{mixed['orders']:,} decided, {mixed['duplicates']} "
                  f"duplicates, load {mixed['load_avg_1m']}."]
    if results.get("gateway"):
        from benchmarks import gateway

        lines += ["", gateway.markdown(results["gateway"])]
    prof = results.get("profile")
    if prof and prof.get("by_area"):
        lines += ["", f"### Where the worker's time goes under load (py-spy, "
                  f"{prof['samples']:,} samples)", "", "| area | share |", "|---|---|"]
        for area, share in prof["by_area"].items():
            lines.append(f"| {area} | {share:.1%} |")
    return lines


def plot(results: dict, stem: Path) -> list[str]:
    """PNG plots next to the JSON; none (and no error) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    for name, sub in results.get("brokers", {}).items():
        written += _plot_broker(plt, name, sub, stem.with_name(f"{stem.name}-{name}"))
    return written


def _plot_broker(plt, name: str, results: dict, stem: Path) -> list[str]:
    written = []
    steps = [s for s in results.get("e2e", {}).get("steps", [])
             if isinstance(s.get("offered_per_s"), (int, float)) and s.get("count")]
    if steps:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        x = [s["offered_per_s"] for s in steps]
        for key, label in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9"),
                           ("max_ms", "max")):
            ax.plot(x, [s[key] for s in steps], marker="o", label=label)
        ax.axhline(15, color="grey", ls=":", lw=1)
        ax.axhline(30, color="grey", ls="--", lw=1)
        ax.set(xscale="log", yscale="log", xlabel="offered orders/s", ylabel="ms",
               title=f"Produce → decision latency, one worker, {name}")
        ax.legend()
        path = stem.with_name(stem.name + "-latency.png")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path.name)
    tp = {k: v for k, v in results.get("throughput", {}).items() if v.get("orders_per_s")}
    if tp:
        fig, ax = plt.subplots(figsize=(7, 4))
        names = list(tp)
        ax.barh(names, [tp[n]["orders_per_s"] for n in names],
                color=["C0" if n.startswith("tradeguard") else "C7" for n in names])
        quix = tp.get("quix", {}).get("orders_per_s")
        if quix:
            ax.axvline(quix, color="grey", ls=":", lw=1)
        ax.set(xlabel="orders/s (preloaded backlog)", title=f"Throughput: TradeGuard vs peers, {name}")
        fig.tight_layout()
        path = stem.with_name(stem.name + "-throughput.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path.name)
    return written
