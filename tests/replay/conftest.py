"""A live worker decides the short scenario, paced in event time; the replay tests read it back.

Recorded once per module: the warm-up history (three days before the open) goes to
Kafka first, as fast as it can; the worker starts on that backlog; then the
five-minute session is sent in event-time order at ``SPEED`` times real time, the
way tests/engine/test_restart.py feeds a session, so the live worker keeps up and
sees logins, trades and orders interleaved as they happened.
"""

from __future__ import annotations

import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tradeguard.broker.admin import create_topics
from tradeguard.broker.clients import GatewayProducer, TopicReader
from tradeguard.broker.embedded import free_port
from tradeguard.broker.worker_process import WorkerProcess
from tradeguard.runtime.settings import Settings
from tradeguard.simulator import Session, generate, load_scenario

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "short.toml"
#: Event time runs this much faster than the wall clock while the session is sent.
SPEED = 60.0
#: After an order is decided: time for the worker to read its own tickers.flow record back.
SETTLE_S = 0.03
#: A small anomaly window, so that the model learns within the recording and a replay that
#: starts from another history shows it in model_version.
ANOMALY_WINDOW = 2


@dataclass
class Recording:
    settings: Settings
    session: Session
    decided: dict[str, list[dict]]  # order_id -> every decision published for it
    worker_log: Path


def record(settings: Settings, session: Session, log: Path) -> Recording:
    """Produce ``session`` to a live worker in event-time order, paced; return what it published.

    The worker is up and ready before the first record. Every record goes in event-time
    order; after each order the gateway waits for its decision, then ``SETTLE_S`` more
    for the worker to read back its own ``tickers.flow`` (the ticker side holds trades
    back while its flow lags). The session itself also keeps to ``SPEED`` times real time.
    """
    gateway = GatewayProducer(settings)
    orders = {r["order_id"] for n, r in session.records if n == "orders"}
    decided: dict[str, list[dict]] = {}
    worker = WorkerProcess(settings, log).start()
    try:
        _wait_ready(settings, worker)
        with TopicReader(settings, "decisions") as reader:
            def absorb(timeout_s: float = 0.0) -> None:
                for _, d in reader.poll(timeout_s):
                    decided.setdefault(d["order_id"], []).append(d)

            t0 = wall0 = None
            for name, r in session.records:
                if r["ts"] >= session.open_ms:
                    if t0 is None:
                        t0, wall0 = r["ts"], time.monotonic()
                    while (lag := wall0 + (r["ts"] - t0) / 1000 / SPEED
                           - time.monotonic()) > 0:
                        absorb(min(lag, 0.02))
                gateway.send(name, r)
                gateway.flush()  # on the broker before the next record is sent
                if name == "orders":
                    deadline = time.monotonic() + 30
                    while r["order_id"] not in decided:
                        absorb(0.01)
                        assert time.monotonic() < deadline, worker.log_tail()
                    settle = time.monotonic() + SETTLE_S
                    while time.monotonic() < settle:
                        absorb(0.005)
            gateway.flush()
        assert orders <= decided.keys(), worker.log_tail()
    finally:
        worker.stop()
    return Recording(settings, session, decided, log)


def _wait_ready(settings: Settings, worker: WorkerProcess, timeout_s: float = 60.0) -> None:
    url = f"http://127.0.0.1:{settings.web_port}/readyz"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert worker.alive, worker.log_tail()
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"worker not ready within {timeout_s:g}s:\n{worker.log_tail()}")


@pytest.fixture(scope="module")
def recording(broker, tmp_path_factory) -> Recording:
    tag = uuid.uuid4().hex[:8]
    tmp = tmp_path_factory.mktemp("replay")
    settings = Settings.from_env(
        env={}, broker=broker.url, topic_prefix=f"r{tag}.", app_id=f"tradeguard-r{tag}",
        partitions=4, web_port=free_port(), web_host="127.0.0.1", state_dir=tmp / "state",
        max_event_age_s=0, anomaly_window=ANOMALY_WINDOW)
    create_topics(settings)
    return record(settings, generate(load_scenario(SCENARIO)), tmp / "worker.log")
