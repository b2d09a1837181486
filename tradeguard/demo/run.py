"""``tradeguard demo``: broker, topics, a worker and a replayed takeover, then a summary.

Everything runs on this machine: the embedded broker on a free port, one
worker process, and this process as the order gateway (it produces the
session and reads decisions and controls back). Every process started here is
stopped by its pid on the way out, also on Ctrl-C and on error.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from streams.topics import CONTROLS_ACCOUNTS, CONTROLS_TICKERS, DECISIONS, ORDERS
from tradeguard.kafka.admin import create_topics
from tradeguard.broker.clients import GatewayProducer, TopicReader
from tradeguard.broker.embedded import EmbeddedBroker, free_port
from tradeguard.kafka.errors import BrokerError
from tradeguard.broker.worker_process import WorkerProcess
from tradeguard.demo.session import SessionScript, scripted_session
from tradeguard.runtime.settings import Settings

__all__ = ["replay_session", "run_demo"]


class _Progress:
    """Counts what came back and prints one live line."""

    def __init__(self, out=sys.stdout) -> None:
        self.out = out
        self.tty = out.isatty()
        self.decisions: dict[str, dict] = {}
        self.actions: Counter = Counter()
        self.halts: list[dict] = []
        self.account_controls: list[dict] = []
        self.first_decision_at: float | None = None
        self._last_print = 0.0
        self._window: list[tuple[float, int]] = []

    def absorb(self, records: list[tuple[str, dict]]) -> None:
        for name, value in records:
            if name == DECISIONS and value["order_id"] not in self.decisions:
                self.decisions[value["order_id"]] = value
                self.actions[value["action"]] += 1
                if self.first_decision_at is None:
                    self.first_decision_at = time.monotonic()
            elif name == CONTROLS_TICKERS and value["action"] == "halt_buys":
                self.halts.append(value)
            elif name == CONTROLS_ACCOUNTS:
                self.account_controls.append(value)

    def show(self, total: int, force: bool = False) -> None:
        now = time.monotonic()
        self._window.append((now, len(self.decisions)))
        self._window = [(t, n) for t, n in self._window if now - t <= 2.0]
        if not force and now - self._last_print < (0.2 if self.tty else 2.0):
            return
        self._last_print = now
        (t0, n0), (t1, n1) = self._window[0], self._window[-1]
        rate = (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0
        line = (f"decided {len(self.decisions):5d}/{total}  {rate:7.0f} orders/s  "
                f"allow {self.actions['allow']:5d}  hold {self.actions['hold']:4d}  "
                f"block {self.actions['block']:4d}  halts {len(self.halts)}")
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n",
              file=self.out, flush=True)


def _drain(reader: TopicReader, progress: _Progress, total: int, until, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        progress.absorb(reader.poll(0.1))
        progress.show(total)
        if until():
            return True
    return False


def replay_session(settings: Settings, script: SessionScript, speed: float, out=sys.stdout,
                   started: float | None = None) -> tuple[_Progress, float]:
    """Replay ``script`` to a running worker as a gateway would; return what came back.

    History goes first at full speed, then one order proves the worker is
    consuming, then the session is paced in event time (``speed`` x faster than
    real time) so controls take effect between orders as they would live.
    """
    started = time.monotonic() if started is None else started
    gateway = GatewayProducer(settings)
    progress = _Progress(out)
    total = script.order_count
    with TopicReader(settings, DECISIONS, CONTROLS_TICKERS, CONTROLS_ACCOUNTS) as reader:
        for ev in script.warmup:
            gateway.send(ev.topic, ev.record)
        first = next(ev for ev in script.events if ev.topic == ORDERS)
        gateway.send(ORDERS, first.record)
        gateway.flush()
        if not _drain(reader, progress, total, lambda: progress.decisions, 90):
            raise RuntimeError("the worker made no decision within 90 s")
        print(f"\nworker up: first decision {progress.first_decision_at - started:.1f} s after "
              f"it started; replaying the session at {speed:g}x", file=out, flush=True)
        events = [ev for ev in script.events if ev is not first]
        wall0, event0 = time.monotonic(), events[0].record["ts"]
        for ev in events:
            due = wall0 + (ev.record["ts"] - event0) / 1000.0 / speed
            while (delay := due - time.monotonic()) > 0:
                gateway.poll()
                progress.absorb(reader.poll(min(delay, 0.05)))
                progress.show(total)
            gateway.send(ev.topic, ev.record)
        gateway.flush()
        if not _drain(reader, progress, total, lambda: len(progress.decisions) >= total, 60):
            raise RuntimeError(f"only {len(progress.decisions)} of {total} orders were decided")
        progress.absorb(reader.poll(0.5))  # controls published right after the last order
        progress.show(total, force=True)
    return progress, time.monotonic() - wall0


def run_demo(quick: bool = False, out=sys.stdout, console: bool = False) -> int:
    script = scripted_session(minutes=14 if quick else 20, accounts=30 if quick else 40)
    speed = 60.0 if quick else 40.0  # event time runs this much faster than the wall clock
    workdir = Path(tempfile.mkdtemp(prefix="tradeguard-demo-"))
    broker = EmbeddedBroker(log_path=workdir / "broker.log")
    worker: WorkerProcess | None = None
    consoles = ExitStack()  # --console: the analyst console, stopped in `finally`
    try:
        print(f"starting the embedded broker (logs in {workdir})", file=out, flush=True)
        broker.start()
        settings = Settings.from_env(env={}, broker=broker.url, broker_profile=broker.profile, partitions=4,
                                     web_port=free_port(), web_host="127.0.0.1",
                                     state_dir=workdir / "state")
        create_topics(settings)
        if console:
            from tradeguard.console.demo import demo_console, wait_for_operator

            shown = consoles.enter_context(demo_console(settings, workdir, out))
        started = time.monotonic()
        worker = WorkerProcess(settings, workdir / "worker.log").start()
        print(f"broker {broker.url} (pid {broker.process.pid}), worker pid {worker.process.pid}",
              file=out, flush=True)
        try:
            progress, replay_s = replay_session(settings, script, speed, out, started)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; worker log:\n{worker.log_tail()}") from None
        print(file=out)
        _summary(script, progress, replay_s, out)
        _burst(settings, script, 2_000 if quick else 10_000, out)
        if console:
            wait_for_operator(shown, out)
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the worker and the broker", file=out, flush=True)
        return 130
    except (BrokerError, RuntimeError) as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        consoles.close()
        if worker is not None:
            worker.stop()
        broker.stop()


def _burst(settings: Settings, script: SessionScript, count: int, out) -> None:
    """After the paced session: ordinary orders as fast as the gateway can send, to show the rate."""
    legit = [ev.record for ev in script.events if ev.topic == ORDERS
             and ev.record["account_id"] not in script.hijacked]
    last_ts = script.events[-1].record["ts"]
    gateway = GatewayProducer(settings)
    ids = set()
    with TopicReader(settings, DECISIONS) as reader:
        started = time.monotonic()
        for i in range(count):
            order = {**legit[i % len(legit)], "order_id": f"burst-{i:06d}", "ts": last_ts + i}
            gateway.send(ORDERS, order)
            ids.add(order["order_id"])
        gateway.flush()
        seen: set[str] = set()
        deadline = time.monotonic() + 120
        while len(seen) < count and time.monotonic() < deadline:
            seen.update(d["order_id"] for _, d in reader.poll(0.2) if d["order_id"] in ids)
        took = time.monotonic() - started
    print(f"burst: {len(seen)}/{count} ordinary orders decided in {took:.1f} s from first send "
          f"= {len(seen) / took:,.0f} decisions/s (one worker, this machine)", file=out)


def _summary(script: SessionScript, progress: _Progress, replay_s: float, out) -> None:
    decisions = progress.decisions
    fraud = [decisions[o] for o in sorted(script.fraud_orders) if o in decisions]
    stopped = [d for d in fraud if d["action"] != "allow"]
    legit = [d for o, d in decisions.items() if o not in script.fraud_orders]
    legit_stopped = [d for d in legit if d["action"] != "allow"]
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p("=" * 72)
    p(f"{len(decisions)} orders decided in {replay_s:.1f} s of replay "
      f"({len(decisions) / replay_s:.0f} orders/s offered by the session's pace)")
    p(f"actions: {dict(progress.actions)}")
    p(f"attacker orders stopped (hold/block): {len(stopped)}/{len(fraud)}; "
      f"legitimate orders stopped: {len(legit_stopped)}/{len(legit)}")
    for d in fraud:
        codes = ", ".join(f"{r['code']}={r['value']:g}" for r in d["reasons"])
        p(f"  {d['account_id']} {d['side']:4s} {d['ticker']:5s} -> {d['action']:5s} "
          f"score {d['score']:.2f}  [{codes}]")
    for d in legit_stopped:
        codes = ", ".join(f"{r['code']}={r['value']:g}" for r in d["reasons"])
        p(f"  (legit) {d['account_id']} {d['side']} {d['ticker']} -> {d['action']} [{codes}]")
    for h in progress.halts:
        ev = h["evidence"] or {}
        p(f"HALT BUYS {h['ticker']}: {h['reason']}; accounts {ev.get('accounts')}")
    for c in progress.account_controls:
        p(f"ACCOUNT {c['action'].upper():8s} {c['account_id']}: {c['reason']}")
    p("=" * 72)
