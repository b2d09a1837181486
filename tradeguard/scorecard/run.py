"""``evaluate``: simulator and engine together on a broker, then the scorecard on disk.

This process is the order gateway: it produces the session (warm-up history
as fast as possible, then the trading session paced in event time), stamps
the wall time each order leaves, and reads decisions and controls back. One
worker process decides. Every process started here is stopped by its pid on
the way out, also on error and Ctrl-C.

Pacing matters: replayed flat out, an attacker's login and first order reach
the worker in the same instant from two topics and race; at the default 20x
an order 5 s of event time after its login arrives 250 ms later, as live.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import orjson

from streams.topics import CONTROLS_ACCOUNTS, CONTROLS_TICKERS, DECISIONS, ORDERS
from tradeguard.kafka.admin import create_topics
from tradeguard.broker.clients import GatewayProducer, TopicReader
from tradeguard.broker.embedded import EmbeddedBroker, free_port
from tradeguard.broker.worker_process import WorkerProcess
from tradeguard.scorecard.baselines import RiverRules, StaticRules, run_baselines
from tradeguard.scorecard.engine import engine_outcome, latency_ms
from tradeguard.scorecard.outcome import session_orders
from tradeguard.scorecard.plots import PlotsUnavailable, write_plots
from tradeguard.scorecard.report import build_report, write_report
from tradeguard.runtime.settings import Settings
from tradeguard.simulator import Session, generate, load_scenario, replay

__all__ = ["DEFAULT_SPEED", "evaluate"]

#: Event time runs this many times faster than the wall clock during the session.
DEFAULT_SPEED = 20.0
#: How long the worker may take to start and decide the warm-up history.
WARMUP_TIMEOUT_S = 180.0
#: How long to wait for the last decisions once everything is produced.
DRAIN_TIMEOUT_S = 60.0

_READ = (DECISIONS, CONTROLS_TICKERS, CONTROLS_ACCOUNTS)


class _StampingProducer:
    """A gateway producer that notes when each order left, for order-to-decision latency."""

    def __init__(self, producer: GatewayProducer) -> None:
        self._producer = producer
        self.sent_at: dict[str, float] = {}  # order_id -> wall epoch ms
        self.sent = 0
        self.last_ts: int | None = None

    def send(self, name: str, record: dict[str, Any]) -> None:
        if name == ORDERS:
            self.sent_at[record["order_id"]] = time.time() * 1000.0
        self._producer.send(name, record)
        self.sent += 1
        self.last_ts = record["ts"]

    def flush(self, timeout_s: float = 30.0) -> None:
        self._producer.flush(timeout_s)


@dataclass
class _Collected:
    """What the engine said, as read back."""

    decisions: list[dict[str, Any]] = field(default_factory=list)
    decided: set[str] = field(default_factory=set)
    ticker_controls: list[dict[str, Any]] = field(default_factory=list)
    account_controls: list[dict[str, Any]] = field(default_factory=list)

    def absorb(self, records: list[tuple[str, dict[str, Any]]]) -> None:
        for name, value in records:
            if name == DECISIONS:
                self.decisions.append(value)
                self.decided.add(value["order_id"])
            elif name == CONTROLS_TICKERS:
                self.ticker_controls.append(value)
            else:
                self.account_controls.append(value)

    def write(self, path: Path) -> None:
        """Every record read back, one ``{"topic": ..., "record": ...}`` per line."""
        with open(path, "wb") as f:
            for name, records in ((DECISIONS, self.decisions),
                                  (CONTROLS_TICKERS, self.ticker_controls),
                                  (CONTROLS_ACCOUNTS, self.account_controls)):
                f.writelines(orjson.dumps({"topic": name, "record": r}) + b"\n" for r in records)


class _ProgressBar:
    """One plain-text line on stderr: a bar over the session's event time, and what came back."""

    def __init__(self, session: Session, out: TextIO, width: int = 30) -> None:
        self.session, self.out, self.width = session, out, width
        self.tty = out.isatty()
        self.started = time.monotonic()
        self._last = 0.0
        self._orders = sum(1 for t, _ in session.records if t == ORDERS)

    def show(self, producer: _StampingProducer, got: _Collected, phase: str,
             force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < (0.2 if self.tty else 5.0):
            return
        self._last = now
        s = self.session
        ts = producer.last_ts if producer.last_ts is not None else s.open_ms
        done = min(max((ts - s.open_ms) / max(s.close_ms - s.open_ms, 1), 0.0), 1.0)
        filled = int(done * self.width)
        halts = sum(c["action"] == "halt_buys" for c in got.ticker_controls)
        line = (f"{phase:8s} [{'#' * filled}{'.' * (self.width - filled)}] {done:4.0%}  "
                f"t+{max(ts - s.open_ms, 0) / 1000:6.0f}s  decided {len(got.decided)}/"
                f"{self._orders}  halts {halts}  account controls {len(got.account_controls)}  "
                f"{now - self.started:5.0f}s")
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", file=self.out,
              flush=True)

    def close(self) -> None:
        if self.tty:
            print(file=self.out, flush=True)


def _session_part(session: Session, live: bool) -> Session:
    return dataclasses.replace(session, records=[
        (t, r) for t, r in session.records if (r["ts"] >= session.open_ms) == live])


def _gateway(session: Session, settings: Settings, speed: float | None, worker: WorkerProcess,
             out: TextIO) -> tuple[dict[str, float], _Collected, float]:
    """Produce the session and read the engine's answers.

    Returns when each order was sent (wall ms), what came back, and how long
    the paced session took. The clients are gone when it returns, before the
    broker is stopped.
    """
    producer = _StampingProducer(GatewayProducer(settings))
    got = _Collected()
    bar = _ProgressBar(session, out)
    warm, live = _session_part(session, live=False), _session_part(session, live=True)
    with TopicReader(settings, *_READ) as reader:

        def read_for(seconds: float, phase: str) -> None:
            deadline = time.monotonic() + seconds
            while (left := deadline - time.monotonic()) > 0:
                got.absorb(reader.poll(min(left, 0.05)))
                bar.show(producer, got, phase)

        def wait_decided(order_ids: set[str], timeout_s: float, phase: str) -> bool:
            deadline = time.monotonic() + timeout_s
            while not order_ids <= got.decided and time.monotonic() < deadline:
                if not worker.alive:
                    raise RuntimeError(f"the worker exited; its log:\n{worker.log_tail()}")
                read_for(0.2, phase)
            return order_ids <= got.decided

        replay(warm, producer, None, lambda *_: bar.show(producer, got, "warm-up"))
        warm_orders = {r["order_id"] for t, r in warm.records if t == ORDERS}
        if not wait_decided(warm_orders, WARMUP_TIMEOUT_S, "warm-up"):
            raise RuntimeError(f"the worker decided {len(got.decided)} of the {len(warm_orders)} "
                               f"warm-up orders within {WARMUP_TIMEOUT_S:g} s; its log:\n"
                               f"{worker.log_tail()}")
        started = time.monotonic()
        replay(live, producer, speed, lambda *_: bar.show(producer, got, "session"),
               progress_every=100, sleep=lambda s: read_for(s, "session"))
        session_s = time.monotonic() - started
        all_orders = {r["order_id"] for t, r in session.records if t == ORDERS}
        if not wait_decided(all_orders, DRAIN_TIMEOUT_S, "draining"):
            print(f"\nevaluate: {len(all_orders - got.decided)} orders still undecided after "
                  f"{DRAIN_TIMEOUT_S:g} s; they count as allowed", file=out, flush=True)
        read_for(1.0, "draining")  # controls published right after the last decisions
        bar.show(producer, got, "done", force=True)
        bar.close()
    return producer.sent_at, got, session_s


def evaluate(scenario_path: str | Path, out_dir: str | Path, broker_url: str | None = None,
             speed: float | None = DEFAULT_SPEED, partitions: int = 4,
             static: StaticRules = StaticRules(), river: RiverRules = RiverRules(),
             out: TextIO | None = None) -> dict[str, Any]:
    """Run the scenario through a worker, score it and its baselines; write the report.

    Without ``broker_url`` an embedded broker is started; with one, the run gets
    its own topic prefix and application id there. ``speed`` None replays as
    fast as possible. Writes ``report.json``, ``report.md``, the plots,
    ``truth.json``, what the engine said (``engine-records.jsonl``) and the
    broker and worker logs to ``out_dir``; returns the report.
    Progress goes to ``out`` (standard error by default).
    """
    if speed is not None and not speed > 0:
        raise ValueError(f"speed must be > 0 (or None for as fast as possible), got {speed!r}")
    out = sys.stderr if out is None else out
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    scenario = load_scenario(scenario_path)
    session = generate(scenario)
    session.truth.write(out_dir / "truth.json")
    print(f"evaluate: scenario {scenario.name!r}: {session.counts()}", file=out, flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="tradeguard-evaluate-"))
    broker = None if broker_url else EmbeddedBroker(log_path=out_dir / "broker.log")
    worker = None
    try:
        if broker is not None:
            broker.start()
        tag = uuid.uuid4().hex[:8]
        settings = Settings.from_env(
            env={} if broker is not None else None,
            broker=broker.url if broker is not None else broker_url,
            broker_profile=broker.profile if broker is not None else None,
            topic_prefix=f"eval-{tag}.", app_id=f"tradeguard-eval-{tag}", partitions=partitions,
            web_port=free_port(), web_host="127.0.0.1", state_dir=workdir / "state",
            # Scenarios replay a recorded day (2025): no bound on event age.
            max_event_age_s=0)
        create_topics(settings)
        # Faust keeps its data directory in the working directory unless told otherwise.
        worker = WorkerProcess(settings, out_dir / "worker.log",
                               extra_env={"FAUST_DATADIR": str(workdir / "faust")}).start()
        print(f"evaluate: broker {settings.broker}, topics {settings.topic_prefix}*, worker pid "
              f"{worker.process.pid}; session at "
              f"{'full speed' if speed is None else f'{speed:g}x'}", file=out, flush=True)
        sent_at, got, session_s = _gateway(session, settings, speed, worker, out)
    finally:
        if worker is not None:
            worker.stop()
        if broker is not None:
            broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    got.write(out_dir / "engine-records.jsonl")
    engine = engine_outcome(got.decisions, got.ticker_controls, got.account_controls)
    baselines = run_baselines(session, static, river)
    report = build_report(
        session, scenario.description, engine, baselines,
        latency=latency_ms({o["order_id"]: sent_at[o["order_id"]]
                            for o in session_orders(session.records, session.open_ms)},
                           got.decisions),
        run={"broker": broker_url or "embedded", "partitions": partitions, "speed": speed,
             "session_wall_s": round(session_s, 1),
             "total_wall_s": round(time.monotonic() - started, 1),
             "decisions": len(got.decisions), "ticker_controls": len(got.ticker_controls),
             "account_controls": len(got.account_controls)},
        halts=got.ticker_controls)
    try:
        report["plots"] = write_plots(session, report, engine, out_dir)
    except PlotsUnavailable as exc:
        report["plots_skipped"] = str(exc)
    write_report(report, out_dir)
    return report

