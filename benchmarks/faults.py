"""``python -m benchmarks.faults [--quick] [--only PARTS]``: what the engine survives, in figures.

Each part starts real workers on the embedded broker (``benchmarks.rig``), does one
fault, bounded in time, and reports what happened to every record:

- ``fuzz``: 100,000 records across the four input topics, generated from the JSON
  Schemas and half of them broken (``benchmarks/fuzz.py``), through one worker;
- ``kill``: SIGKILL of one of two workers while they work off a backlog; the
  successor's decisions are compared, order by order, with an uninterrupted run;
- ``stop_worker``: SIGSTOP of one of two workers past the session timeout (10 s),
  then SIGCONT, under a steady 1,000 orders/s;
- ``stop_broker``: SIGSTOP of the broker for 10 s, then SIGCONT, under 1,000 orders/s;
- ``stop_broker_static``: the same, the worker a static group member
  (``TRADEGUARD_GROUP_INSTANCE_ID``): it rejoins as itself, with no session to wait out;
- ``accounts``: 1,000,000 distinct account ids through one worker; its memory.

The tests hold the parts that fit their time budget (tests/faults/); this is the rest.
Results go to ``benchmarks/results/faults-<UTC>.json`` and ``.md``; the README's
"Reliability" section quotes them. A figure is reported, never asserted: the exit
status is 1 only when a part could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import traceback
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import orjson
from confluent_kafka import Producer

from benchmarks.fuzz import INPUT_TOPICS, generate
from benchmarks.rig import Rig, rss_bytes
from benchmarks.stats import LatencyHistogram
from benchmarks.workload import Workload
from tradeguard.broker.clients import GatewayProducer, TopicReader
from tradeguard.broker.embedded import free_port
from tradeguard.runtime.settings import Settings
from tradeguard.runtime.signals import Terminated, stop_on_signals

PARTS = ("fuzz", "kill", "stop_worker", "stop_broker", "stop_broker_static", "accounts")


def session_timeout_s(settings: Settings) -> float:
    """How long a silent worker keeps its partitions (agents/pipe.py: session.timeout.ms)."""
    return (settings.session_timeout_ms or settings.profile.session_timeout_ms) / 1000


class Decisions:
    """Every decision read from a topic: all verdicts per order id, and when each first came."""

    def __init__(self, settings: Settings) -> None:
        self.reader = TopicReader(settings, "decisions")
        self.by_order: dict[str, list[tuple[str, float]]] = defaultdict(list)
        self.first_at: dict[str, float] = {}
        self.arrivals: list[float] = []

    def poll(self, timeout_s: float = 0.2) -> int:
        got = self.reader.poll(timeout_s, max_records=50_000)
        now = time.monotonic()
        for _, d in got:
            self.by_order[d["order_id"]].append((d["action"], round(d["score"], 12)))
            self.first_at.setdefault(d["order_id"], now)
            self.arrivals.append(now)
        return len(got)

    def until(self, ids: set[str], timeout_s: float, stall_s: float = 60.0) -> bool:
        deadline, last = time.monotonic() + timeout_s, time.monotonic()
        while time.monotonic() < deadline and not ids <= self.by_order.keys():
            if self.poll():
                last = time.monotonic()
            elif time.monotonic() - last > stall_s:
                break
        return ids <= self.by_order.keys()

    def summary(self, ids: set[str]) -> dict:
        decided = ids & self.by_order.keys()
        dups = {o: v for o, v in self.by_order.items() if o in ids and len(v) > 1}
        return {"orders": len(ids), "decided": len(decided), "missing": len(ids - decided),
                "duplicated_orders": len(dups),
                "duplicates_that_differ": sum(1 for v in dups.values() if len(set(v)) > 1)}

    def close(self) -> None:
        self.reader.close()


def _backlog(settings: Settings, workload: Workload, run: str, count: int, t0: int) -> set[str]:
    """Context, then ``count`` orders with fixed event times (so two runs can be compared)."""
    gateway = GatewayProducer(settings)
    gateway.send_many("auth.events", workload.logins)
    gateway.send_many("market.trades", workload.trades)
    ids = set()
    for i in range(count):
        o = {**workload.orders[i % len(workload.orders)], "order_id": f"{run}-{i}", "ts": t0 + i}
        gateway.send("orders", o)
        ids.add(o["order_id"])
    gateway.flush(120)
    return ids


def _pair(rig: Rig, name: str) -> tuple[Settings, Settings]:
    """Two workers' settings: one group, one topic set, each its own metrics port."""
    settings = rig.topics(name)
    return (settings.with_(web_port=free_port(), web_host="127.0.0.1"),
            settings.with_(web_port=free_port(), web_host="127.0.0.1"))


def _assigned(settings: Settings) -> float | None:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.web_port}/metrics",
                                    timeout=3) as r:
            for line in r.read().decode().splitlines():
                if line.startswith("tradeguard_assigned_partitions "):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


# -- parts ------------------------------------------------------------------------------------

def part_fuzz(rig: Rig, count: int, log) -> dict:
    settings = rig.topics("fuzz").with_(max_event_age_s=86_400.0, log_level="info")
    per_topic = count // len(INPUT_TOPICS)
    t = time.monotonic()
    cases = [c for i, name in enumerate(INPUT_TOPICS) for c in generate(name, per_topic, seed=i)]
    log(f"  generated {len(cases):,} records in {time.monotonic() - t:.0f} s "
        f"({sum(not c.valid for c in cases):,} broken)")
    worker = rig.worker(settings.with_(web_port=0), "fuzz-worker")
    # A raw producer: each record's delivery report tells where it landed (topic, partition,
    # offset), which is what its dead letter names.
    producer = Producer({**settings.kafka_client_config(), "partitioner": "murmur2_random",
                         "linger.ms": 5, "log_level": 3})
    where: dict[tuple[str, int, int], object] = {}

    def delivered(case):
        def cb(err, msg):
            if err is None:
                where[(msg.topic(), msg.partition(), msg.offset())] = case
        return cb

    for c in cases:
        while True:
            try:
                producer.produce(settings.topic(c.topic), key=c.key.encode(), value=c.value,
                                 on_delivery=delivered(c))
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(120)
    orders = {orjson_id(c) for c in cases if c.valid and c.topic == "orders"}
    invalid = sum(not c.valid for c in cases)
    decisions = Decisions(settings)
    dead: list[dict] = []
    places: set = set()
    with TopicReader(settings, "deadletter") as dl:
        deadline, last = time.monotonic() + 600, time.monotonic()
        while time.monotonic() < deadline:
            got = decisions.poll(0.1) + len(new := dl.poll(0.1, 50_000))
            dead += [d for _, d in new]
            places |= {(d["source_topic"], d["partition"], d["offset"]) for _, d in new}
            if got:
                last = time.monotonic()
            if (orders <= decisions.by_order.keys() and len(places) >= invalid) or \
                    time.monotonic() - last > 30:
                break
    decisions.close()
    right_field = wrong_field = valid_dead = repeated = 0
    by_mutation: Counter = Counter(c.mutation for c in cases if not c.valid)
    caught: Counter = Counter()
    seen: set = set()
    for d in dead:
        place = (d["source_topic"], d["partition"], d["offset"])
        case = where.get(place)
        if case is None:
            continue
        if place in seen:  # the same record dead-lettered again (it was read twice)
            repeated += 1
            continue
        seen.add(place)
        if case.valid:
            valid_dead += 1
            continue
        caught[case.mutation] += 1
        if case.field is not None and case.mutation != "truncated":
            right_field += d["field"] == case.field
            wrong_field += d["field"] != case.field
    summary = decisions.summary(orders)
    return {"records": len(cases), "invalid": invalid, "valid_orders": len(orders),
            "valid_orders_decided": summary["decided"], "duplicates": summary["duplicated_orders"],
            "invalid_deadlettered": sum(caught.values()), "valid_deadlettered": valid_dead,
            "deadletters_repeated": repeated,
            "field_named_right": right_field, "field_named_wrong": wrong_field,
            "not_caught_by_mutation": {m: by_mutation[m] - caught[m] for m in by_mutation
                                       if by_mutation[m] != caught[m]},
            "worker_alive": worker.alive, "worker_exit": worker.process.poll()}


def orjson_id(case) -> str:
    return orjson.loads(case.value)["order_id"]


def _two_workers(rig: Rig, workload: Workload, name: str, count: int, t0: int,
                 kill_after: int | None = None) -> tuple[Decisions, set[str], dict]:
    """The backlog worked off by two workers; SIGKILL the first after ``kill_after`` decisions."""
    a, b = _pair(rig, name)
    ids = _backlog(a, workload, "k", count, t0)
    decisions = Decisions(a)
    first, second = rig.worker(a, f"{name}-w0"), rig.worker(b, f"{name}-w1")
    facts: dict = {}
    if kill_after is not None:
        while len(decisions.by_order) < kill_after:
            decisions.poll(0.05)
        killed_at = time.monotonic()
        os.kill(first.process.pid, signal.SIGKILL)
        facts["decided_before_kill"] = len(decisions.by_order)
        facts["all_decided"] = decisions.until(ids, 300)
        after = sorted(t for t in decisions.arrivals if t >= killed_at)
        gaps = np.diff([killed_at] + after) if after else np.array([0.0])
        facts["seconds_kill_to_last_decision"] = round(max(decisions.first_at.values())
                                                       - killed_at, 1)
        facts["longest_silence_after_kill_s"] = round(float(gaps.max()), 1)
        facts["survivor_alive"] = second.alive
    else:
        decisions.until(ids, 300)
    first.stop()
    second.stop()
    return decisions, ids, facts


def _agree(x: Decisions, y: Decisions, ids: set[str]) -> dict:
    both = [o for o in ids if o in x.by_order and o in y.by_order]
    return {"compared": len(both),
            "same_action": sum(x.by_order[o][0][0] == y.by_order[o][0][0] for o in both),
            "same_score": sum(x.by_order[o][0] == y.by_order[o][0] for o in both)}


def part_kill(rig: Rig, workload: Workload, count: int, log) -> dict:
    """Against two uninterrupted two-worker runs: two workers share ticker profiles, logins
    and controls through Kafka, so even two clean runs need not agree to the last digit; how
    much they do is the yardstick for the run with a crash."""
    t0 = int(time.time() * 1000) - 600_000
    ref1, ids, _ = _two_workers(rig, workload, "kref1", count, t0)
    ref2, _, _ = _two_workers(rig, workload, "kref2", count, t0)
    crashed, _, facts = _two_workers(rig, workload, "kill", count, t0, kill_after=count // 50)
    out = {**crashed.summary(ids), **facts,
           "clean_vs_clean": _agree(ref1, ref2, ids), "crash_vs_clean": _agree(crashed, ref1, ids)}
    for d in (ref1, ref2, crashed):
        d.close()
    return out


def _paced(rig: Rig, settings: Settings, run: str, rate: float, seconds: float,
           workload_spec: dict):
    count = int(rate * seconds)
    collector = rig.collector(settings)
    collector.expect(run, count)
    producer = rig.produce(settings, run, count=count, rate=rate, workload_spec=workload_spec)
    return collector, producer, count


def part_stop_worker(rig: Rig, workload: Workload, spec: dict, seconds: float, log) -> dict:
    a, b = _pair(rig, "stopw")
    if a.broker_profile == "kafka":  # zombie fencing is what this part shows (transactions)
        a, b = (s.with_(processing_guarantee="exactly_once") for s in (a, b))
    rig.load_context(a, workload)
    first, second = rig.worker(a, "stopw-w0"), rig.worker(b, "stopw-w1")
    _warm(rig, a, spec)
    decisions = Decisions(a)
    collector, producer, count = _paced(rig, a, "sw", 1_000, seconds, spec)
    start = time.monotonic()
    while time.monotonic() - start < 8:
        collector.poll()
        decisions.poll(0.05)
    assigned_before = (_assigned(a), _assigned(b))
    os.kill(first.process.pid, signal.SIGSTOP)
    stopped_for = session_timeout_s(a) + 5
    while time.monotonic() - start < 8 + stopped_for:
        collector.poll()
        decisions.poll(0.05)
    os.kill(first.process.pid, signal.SIGCONT)
    collector.wait("sw", 240, busy=lambda: producer.poll() is None)
    producer.process.wait(60)
    time.sleep(session_timeout_s(a))  # let the returning worker rejoin
    decisions.until({f"sw-{i}" for i in range(count)}, 30)
    assigned_after = (_assigned(a), _assigned(b))
    halts = Counter()
    with TopicReader(a, "controls.tickers") as reader:
        for _, h in reader.read_until(lambda rs: False, 3):
            if h["action"] == "halt_buys":
                halts[h["ticker"]] += 1
    out = {**decisions.summary({f"sw-{i}" for i in range(count)}),
           "stopped_s": stopped_for, "assigned_partitions_before": assigned_before,
           "assigned_partitions_after": assigned_after, "stopped_worker_alive": first.alive,
           "stopped_worker_exit": first.process.poll(),
           "processing_guarantee": "exactly_once" if a.exactly_once else "at_least_once",
           "halts": sum(halts.values()), "tickers_halted_more_than_once": sum(
               1 for n in halts.values() if n > 1)}
    decisions.close()
    return out


def _warm(rig: Rig, settings: Settings, spec: dict, n: int = 300) -> None:
    collector = rig.collector(settings)
    collector.expect("warm", n)
    producer = rig.produce(settings, "warm", count=n, rate=1_000, workload_spec=spec)
    if not collector.wait("warm", 180, stall_s=180):
        raise RuntimeError("the workers decided nothing within 180 s")
    producer.process.wait(30)


def part_stop_broker(rig: Rig, workload: Workload, spec: dict, seconds: float, log,
                     static: bool = False) -> dict:
    # info: the log says how the worker got its partitions back (resumed or restored, and why)
    settings = rig.topics("stopb").with_(
        log_level="info", kafka_debug=os.environ.get("TRADEGUARD_BENCH_KAFKA_DEBUG", ""))
    if static:  # static group membership (KIP-345): the worker rejoins as itself
        settings = settings.with_(group_instance_id="stopb-w0")
    rig.load_context(settings, workload)
    worker = rig.worker(settings, "stopb-w0")
    _warm(rig, settings, spec)
    collector, producer, count = _paced(rig, settings, "sb", 1_000, seconds, spec)
    start = time.monotonic()
    stop_at, stop_s = 10.0, 10.0
    while time.monotonic() - start < stop_at:
        collector.poll()
    os.kill(rig.broker.process.pid, signal.SIGSTOP)
    time.sleep(stop_s)
    os.kill(rig.broker.process.pid, signal.SIGCONT)
    collector.wait("sb", 240, busy=lambda: producer.poll() is None)
    producer.process.wait(60)
    sent, recv = rig.sent_ns("sb"), collector.runs["sb"]
    done = recv > 0
    second = (sent - sent[0]) // 1_000_000_000
    lat = np.where(done, recv - sent, 0)
    before = LatencyHistogram.from_ns(lat[done & (second < stop_at - 1)]).summary()
    by_second = [float(lat[(second == k) & done].max()) / 1e6 if ((second == k) & done).any()
                 else None for k in range(int(second.max()) + 1)]
    calm = max(2 * before.get("p99_ms", 50.0), 100.0)
    resume = stop_at + stop_s
    resumed_ns = sent[0] + int(resume * 1e9)  # both clocks are CLOCK_MONOTONIC in ns
    after = recv[done & (recv >= resumed_ns)]
    first_after = round((int(after.min()) - resumed_ns) / 1e9, 1) if len(after) else None
    recovered = next((k - resume for k in range(int(resume), len(by_second))
                      if by_second[k] is not None and by_second[k] <= calm
                      and all(x is not None and x <= calm for x in by_second[k:k + 3])), None)
    return {"orders": count, "decided": int(done.sum()), "missing": int((~done).sum()),
            "duplicates": collector.duplicates, "broker_stopped_s": stop_s,
            "p99_ms_before": before.get("p99_ms"),
            "max_ms_orders_sent_while_stopped": max((x for x in by_second[int(stop_at):int(
                resume)] if x is not None), default=None),
            "seconds_after_resume_until_calm": recovered, "calm_ms": round(calm, 1),
            "seconds_after_resume_to_first_decision": first_after,
            "max_ms_by_second": [None if x is None else round(x, 1) for x in by_second],
            "worker_alive": worker.alive, "static_membership": static}


def part_accounts(rig: Rig, count: int, log) -> dict:
    settings = rig.topics("accounts").with_(max_event_age_s=86_400.0)
    worker = rig.worker(settings, "accounts-w0")
    gateway = GatewayProducer(settings)
    now = int(time.time() * 1000)
    base = {"ticker": "7203", "side": "buy", "qty": 100, "price": 2500.0, "margin": False,
            "session_id": None}
    gateway.send("orders", {**base, "order_id": "a-warm", "account_id": "acct-warm", "ts": now})
    gateway.flush()
    decisions = Decisions(settings)
    decisions.until({"a-warm"}, 180)
    time.sleep(2)
    rss0 = rss_bytes(worker.process.pid)
    t = time.monotonic()
    for i in range(count):
        gateway.send("orders", {**base, "order_id": f"a-{i}", "account_id": f"acct-m{i:07d}",
                                "ts": now + i // 100})
    gateway.flush(300)
    seen = 0
    deadline, last = time.monotonic() + 900, time.monotonic()
    while seen < count and time.monotonic() < deadline and time.monotonic() - last < 60:
        got = decisions.reader.poll(0.2, 100_000)
        seen += sum(1 for _, d in got if d["order_id"] != "a-warm")
        if got:
            last = time.monotonic()
    took = time.monotonic() - t
    rss1 = rss_bytes(worker.process.pid)
    decisions.close()
    return {"accounts": count, "decided": seen, "seconds": round(took, 1),
            "decided_per_s": round(seen / took), "rss_before_mb": round(rss0 / 2 ** 20),
            "rss_after_mb": round(rss1 / 2 ** 20),
            "bytes_per_account": round((rss1 - rss0) / max(count, 1)),
            "worker_alive": worker.alive}


# -- report -----------------------------------------------------------------------------------

def markdown(results: dict) -> str:
    lines = [f"# Faults: {results['started_utc']} ({results['mode']})", "",
             "| fault | what happened | figure |", "|---|---|---|"]
    f = results.get("fuzz")
    if f:
        lines.append(
            f"| fuzz: {f['records']:,} records, {f['invalid']:,} broken in 15 ways | valid orders "
            f"decided {f['valid_orders_decided']:,}/{f['valid_orders']:,}, duplicates "
            f"{f['duplicates']}; broken dead-lettered {f['invalid_deadlettered']:,}/"
            f"{f['invalid']:,}, field named right {f['field_named_right']:,}, wrong "
            f"{f['field_named_wrong']}; valid dead-lettered {f['valid_deadlettered']}; dead "
            f"letters repeated {f['deadletters_repeated']}; worker "
            f"alive: {f['worker_alive']} | not caught: {f['not_caught_by_mutation'] or 'none'} |")
    k = results.get("kill")
    if k:
        cc, xc = k["clean_vs_clean"], k["crash_vs_clean"]
        lines.append(
            f"| SIGKILL one of two workers at {k['decided_before_kill']:,}/{k['orders']:,} "
            f"decided (backlog) | decided {k['decided']:,}/{k['orders']:,}, duplicated orders "
            f"{k['duplicated_orders']} (differing {k['duplicates_that_differ']}); same action as "
            f"a clean run {xc['same_action']:,}/{xc['compared']:,}, same score "
            f"{xc['same_score']:,} (two clean runs: {cc['same_action']:,} and "
            f"{cc['same_score']:,}) | last decision {k['seconds_kill_to_last_decision']} s "
            f"after the kill, longest silence {k['longest_silence_after_kill_s']} s |")
    s = results.get("stop_worker")
    if s:
        lines.append(
            f"| SIGSTOP one of two workers {s['stopped_s']:g} s (session timeout 10 s), SIGCONT, "
            f"1,000 orders/s | decided {s['decided']:,}/{s['orders']:,}, duplicated "
            f"{s['duplicated_orders']} (differing {s['duplicates_that_differ']}); partitions "
            f"before {s['assigned_partitions_before']}, after {s['assigned_partitions_after']} "
            f"| halts {s['halts']}, tickers halted twice {s['tickers_halted_more_than_once']} |")
    for b in (results.get("stop_broker"), results.get("stop_broker_static")):
        if not b:
            continue
        lines.append(
            f"| SIGSTOP the broker {b['broker_stopped_s']:g} s, 1,000 orders/s"
            f"{', static membership' if b.get('static_membership') else ''} | decided "
            f"{b['decided']:,}/{b['orders']:,}, duplicates {b['duplicates']}, worker alive: "
            f"{b['worker_alive']} | p99 before {b['p99_ms_before']} ms; orders sent while "
            f"stopped waited up to {b['max_ms_orders_sent_while_stopped']} ms; first decision "
            f"{b['seconds_after_resume_to_first_decision']} s after SIGCONT; calm "
            f"(<= {b['calm_ms']} ms) {b['seconds_after_resume_until_calm']} s after SIGCONT |")
    a = results.get("accounts")
    if a:
        lines.append(
            f"| {a['accounts']:,} distinct account ids | decided {a['decided']:,} in "
            f"{a['seconds']} s ({a['decided_per_s']:,}/s) | worker RSS {a['rss_before_mb']} -> "
            f"{a['rss_after_mb']} MB, {a['bytes_per_account']} B per account (no eviction) |")
    for e in results["errors"]:
        lines.append(f"\nERROR {e}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.faults",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts (CI, ~3 minutes)")
    parser.add_argument("--only", default=",".join(PARTS))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--broker", choices=("kafka", "tansu"), default="kafka",
                        help="Apache Kafka (default) or the embedded Tansu")
    parser.add_argument("--session-ms", type=int, default=None,
                        help="the workers' consumer session (TRADEGUARD_SESSION_TIMEOUT_MS); "
                             "default: the broker profile's (6,000 on Kafka, the least a stock "
                             "broker accepts; the test broker accepts 1,000)")
    parser.add_argument("--group-protocol", choices=("classic", "consumer"), default="classic",
                        help="the workers' consumer group protocol "
                             "(TRADEGUARD_GROUP_PROTOCOL; consumer: KIP-848, Kafka only)")
    args = parser.parse_args(argv)
    parts = [p for p in args.only.split(",") if p]
    if set(parts) - set(PARTS):
        parser.error(f"unknown parts {sorted(set(parts) - set(PARTS))}; choose from {PARTS}")
    try:
        with stop_on_signals():
            return run(parts, args.quick, args.out, args.broker, args.session_ms,
                       args.group_protocol)
    except Terminated as exc:
        return exc.exit_status


def run(parts: list[str], quick: bool, out_dir: Path, broker: str = "kafka",
        session_ms: int | None = None, group_protocol: str = "classic") -> int:
    started = datetime.now(timezone.utc)
    t0 = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f}s] {msg}", flush=True)

    results: dict = {"started_utc": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                     "mode": "quick" if quick else "full", "cpus": os.cpu_count(),
                     "broker": broker, "session_timeout_ms": session_ms,
                     "group_protocol": group_protocol,
                     "errors": []}
    spec = {"accounts": 2_000, "templates": 20_000, "seed": 5,
            "now_ms": int(time.time() * 1000)}
    workload = Workload.build(accounts=spec["accounts"], orders=spec["templates"],
                              seed=spec["seed"], now_ms=spec["now_ms"])
    jobs = {
        "fuzz": lambda rig: part_fuzz(rig, 20_000 if quick else 100_000, log),
        "kill": lambda rig: part_kill(rig, workload, 10_000 if quick else 40_000, log),
        "stop_worker": lambda rig: part_stop_worker(rig, workload, spec, 30 if quick else 40,
                                                    log),
        "stop_broker": lambda rig: part_stop_broker(rig, workload, spec, 40 if quick else 60,
                                                    log),
        "stop_broker_static": lambda rig: part_stop_broker(
            rig, workload, spec, 40 if quick else 60, log, static=True),
        "accounts": lambda rig: part_accounts(rig, 100_000 if quick else 1_000_000, log),
    }
    for name in parts:
        log(f"{name} ...")
        try:
            with Rig(broker=broker) as rig:  # a fresh broker per part: one fault does not leak into the next
                rig.session_timeout_ms = session_ms
                rig.group_protocol = group_protocol
                results[name] = jobs[name](rig)
            log(f"  {json.dumps(results[name], default=str)[:400]}")
        except Exception as exc:  # the report says which part broke, and the exit status
            results["errors"].append(f"{name}: {type(exc).__name__}: {exc}")
            log(f"{name} FAILED:\n{traceback.format_exc()}")
    results["elapsed_s"] = round(time.monotonic() - t0, 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"faults-{started.strftime('%Y%m%dT%H%M%SZ')}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    table = markdown(results)
    stem.with_suffix(".md").write_text(table)
    print("\n" + table, flush=True)
    log(f"wrote {stem}.json, {stem}.md")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
