"""A live worker decides the short scenario, fed in event-time order; the replay reads it back.

The scenario's three days of history and its five-minute session go to a running
worker one record at a time in event-time order, each on the broker before the next
is sent (the way tests/engine/test_restart.py feeds a session, slower): after each
order the gateway waits for its decision and for the worker to read its own
``tickers.flow`` back, and the session keeps to ``SPEED`` times real time. So the
worker takes in logins, trades and orders in the order they happened, as it would
live, not as a backlog (a backlog is where a worker's view and event time part:
docs/replay.md, "What a replay cannot reproduce").
"""

from __future__ import annotations

import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import orjson
from confluent_kafka import Producer

from streams.topics import partition_for
from tradeguard.broker.clients import GatewayProducer, TopicReader
from tradeguard.broker.worker_process import WorkerProcess
from tradeguard.runtime.settings import Settings
from tradeguard.simulator import Session

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "short.toml"
#: Event time runs this much faster than the wall clock while the session is sent.
SPEED = 60.0
#: After an order is decided: time for the worker to read its own tickers.flow record back.
SETTLE_S = 0.03
#: A small anomaly window, so that the model learns within the recording and a replay that
#: starts from another history shows it in model_version.
ANOMALY_WINDOW = 2
#: The candidate policy: holds from a probability of 0.01 instead of 0.5. The live worker also
#: scores every order with it in shadow mode (decisions.shadow).
CANDIDATE = "[order]\nhold_at = 0.01\nblock_at = 0.6\n"


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
                        _send_unusable(settings, gateway, r["ts"])
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


#: Orders the live worker dead-letters, which the replay must leave out too.
UNUSABLE = ("broken-json",)
#: An order produced off its key's murmur2 partition: the live worker re-sends it to its own
#: and decides it there once; the replay reads the copy, not the original.
MOVED = ("misplaced",)


def _send_unusable(settings: Settings, gateway: GatewayProducer, ts: int) -> None:
    """An order that is not JSON, and a valid one on a partition its key does not hash to."""
    gateway.send("orders", b'{"order_id": "broken-json", "account_id": ', key="AC-UNUSABLE")
    order = {"order_id": "misplaced", "account_id": "AC-UNUSABLE", "ticker": "7203",
             "side": "buy", "qty": 100, "price": 2500.0, "margin": False, "session_id": None,
             "ts": ts}
    right = partition_for("AC-UNUSABLE", settings.partitions)
    producer = Producer(settings.kafka_client_config())
    producer.produce(settings.topic("orders"), orjson.dumps(order), b"AC-UNUSABLE",
                     partition=(right + 1) % settings.partitions)
    assert producer.flush(10) == 0
    gateway.flush()


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
