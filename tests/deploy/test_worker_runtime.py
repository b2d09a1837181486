"""What Kubernetes relies on, against a real worker on the embedded broker.

Readiness turns true only after assignment; /metrics moves when orders flow;
SIGTERM mid-stream loses no decision and leaves the group's offsets committed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from worker_probe import (committed_offsets, get, get_json, log_ends, login, order, read_field,
                          scrape, total, value, wait_ready)

from streams.signing import ControlKeys, sign
from tradeguard.broker.clients import GatewayProducer, TopicReader
from tradeguard.broker.worker_process import WorkerProcess

pytestmark = pytest.mark.broker

SNAPSHOT_AGE = "tradeguard_last_snapshot_age_seconds"
DEPLOY_README = Path(__file__).resolve().parents[2] / "deploy" / "README.md"


@pytest.fixture(scope="module")
def watched_from_start(module_engine_settings, tmp_path_factory):
    """One worker for the two probe tests, its /readyz watched from its start until ready:
    [(status, body)] at each change. The healthz test stops it only well within its session."""
    settings = module_engine_settings
    worker = WorkerProcess(settings, tmp_path_factory.mktemp("watched") / "worker.log").start()
    try:
        seen: list[tuple[int | None, dict | None]] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            status, body = get_json(settings, "/readyz")
            if status is not None and (not seen or seen[-1][1] != body):
                seen.append((status, body))
            if status == 200:
                break
            assert worker.alive, worker.log_tail()
            time.sleep(0.05)
        yield settings, worker, seen
    finally:
        worker.stop()


def test_readiness_turns_true_only_after_partitions_are_assigned(watched_from_start):
    settings, worker, seen = watched_from_start
    statuses = [s for s, _ in seen]
    assert statuses[-1] == 200, (seen, worker.log_tail())
    # The web server answers before the group join: not ready, and says why.
    before = [b for s, b in seen if s == 503]
    assert before and not before[0]["checks"]["partitions_assigned"], seen
    assert all(s == 503 for s in statuses[:-1])
    ready = seen[-1][1]
    assert all(ready["checks"].values())
    assert ready["partitions"] > 0 and ready["partitions"] % settings.partitions == 0

    status, live = get_json(settings, "/healthz")
    assert status == 200 and live["live"] and live["crashed_agents"] == [], live


def test_healthz_cannot_answer_while_the_event_loop_is_stopped(watched_from_start):
    """A wedged loop fails the probe by timing out; once it runs again the stall is reported."""
    engine_settings, worker, _ = watched_from_start
    wait_ready(engine_settings, worker)
    os.kill(worker.process.pid, signal.SIGSTOP)
    try:
        status, error = get(engine_settings, "/healthz", timeout_s=2.0)
        assert status is None and "timed out" in error, (status, error)
    finally:
        # Wall clock on purpose: the stall itself is what is measured (stopped >= 3.5 s in all).
        time.sleep(1.5)
        os.kill(worker.process.pid, signal.SIGCONT)
    deadline = time.monotonic() + 10
    while (answer := get_json(engine_settings, "/healthz"))[0] is None:  # resumed: answers again
        assert time.monotonic() < deadline, answer
        time.sleep(0.05)
    status, live = answer
    # Stopped >= 3.5 s; the heartbeat wakes every second, so the lateness it reports is the
    # stop less the part of a period it was not yet due: >= 2.5 s whatever the phase.
    assert status == 200 and live["loop_lag_s"] >= 2.4, live


def test_metrics_move_when_orders_flow_and_logs_are_json_lines(engine_settings, start_worker):
    secret = "s3cr3t-never-logged"
    worker = start_worker(engine_settings, TRADEGUARD_LOG_FORMAT="json",
                          TRADEGUARD_SASL_PASSWORD=secret, TRADEGUARD_SNAPSHOT_INTERVAL_S="2")
    wait_ready(engine_settings, worker)
    before = scrape(engine_settings)
    assert not any(name == SNAPSHOT_AGE for name, _ in before), "a snapshot age before any snapshot"
    assert value(before, "tradeguard_orders_consumed_total") == 0
    assert value(before, "tradeguard_ready") == 1

    gateway = GatewayProducer(engine_settings)
    accounts = [f"acct-{a}" for a in range(30)]
    for a in accounts:
        gateway.send("auth.events", login(a))
    n = 300
    for i in range(n):
        gateway.send("orders", order(i, accounts[i % len(accounts)]))
    gateway.send("orders", b'{"order_id": "x1", "account_id": ', key="acct-bad")
    gateway.send("orders", orjson.dumps({**order(n, "acct-bad"), "qty": "100"}), key="acct-bad")
    now = int(time.time() * 1000)
    gateway.send("controls.tickers", sign({  # signed: the engine enforces no other
        "ticker": "4592", "action": "halt_buys", "reason": "analyst: targeted ticker",
        "evidence": {}, "expires_at": now + 600_000, "source": "analyst", "ts": now, "seq": 1},
        ControlKeys.development()))
    gateway.flush()

    with TopicReader(engine_settings, "decisions") as reader:
        decided = reader.read_until(lambda rs: len(rs) >= n, timeout_s=60)
    assert len(decided) >= n, worker.log_tail()
    # A snapshot is taken on a step once a partition's interval has passed: one more login
    # after the interval makes a step. Wall clock on purpose: the interval (2 s) is wall time.
    time.sleep(2.5)
    gateway.send("auth.events", login(accounts[0]))
    gateway.flush()
    logins = len(accounts) + 1

    deadline = time.monotonic() + 20
    while True:  # counters are read at scrape time; the halt arrives on its own consumer
        after = scrape(engine_settings)
        if (value(after, "tradeguard_active_ticker_halts") == 1
                and total(after, "tradeguard_consumer_lag") == 0
                and (SNAPSHOT_AGE, frozenset()) in after) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert value(after, "tradeguard_orders_consumed_total") == n
    assert value(after, "tradeguard_records_consumed_total", topic="orders") == n
    assert value(after, "tradeguard_records_consumed_total", topic="auth.events") == logins
    assert total(after, "tradeguard_decisions_total") == n
    assert value(after, "tradeguard_decision_latency_seconds_count") == n
    assert value(after, "tradeguard_decision_latency_seconds_bucket", le="+Inf") == n
    assert value(after, "tradeguard_deadletter_total", topic="orders", reason="malformed_json") == 1
    assert value(after, "tradeguard_deadletter_total", topic="orders", reason="invalid_field") == 1
    # Every record polled went through the engine's steps: the orders, the two bad ones,
    # the logins, and each order again as it comes back re-keyed by ticker on tickers.flow.
    assert value(after, "tradeguard_batch_size_count", agent="engine") >= 1
    assert value(after, "tradeguard_batch_size_sum", agent="engine") == 2 * n + logins + 2
    assert value(after, "tradeguard_records_consumed_total", topic="tickers.flow") == n
    assert value(after, "tradeguard_active_ticker_halts") == 1
    assert total(after, "tradeguard_model_info") == 1
    lag = {dict(ls)["partition"] for (name, ls) in after if name == "tradeguard_consumer_lag"
           and dict(ls)["topic"] == engine_settings.topic("orders")}
    assert lag == {str(p) for p in range(engine_settings.partitions)}
    assert total(after, "tradeguard_consumer_lag") == 0
    # Ours are tradeguard_*; the rest are prometheus_client's process, platform and GC series.
    assert all(name.startswith(("tradeguard_", "process_", "python_")) for name, _ in after), \
        sorted({name for name, _ in after})
    assert any(name.startswith("process_") for name, _ in after)
    # deploy/README.md's metrics table names exactly the families a worker exposes.
    _, text = get(engine_settings, "/metrics")
    exposed = {name for name in re.findall(r"^# TYPE (tradeguard_\w+) ", text, re.M)
               if not name.endswith("_created")}  # prometheus_client's creation stamps
    table = DEPLOY_README.read_text().split("### Metrics", 1)[1].split("\n## ", 1)[0]
    assert set(re.findall(r"`(tradeguard_\w+)", table)) == exposed
    # Present once the worker wrote a snapshot (every 2 s here), and only then.
    assert (SNAPSHOT_AGE, frozenset()) in after, sorted({n for n, _ in after})
    assert after[(SNAPSHOT_AGE, frozenset())] >= 0
    assert total(after, "tradeguard_snapshots_written_total") >= 1

    lines = [line for line in worker.log_path.read_text().splitlines() if line.strip()]
    assert lines
    for line in lines:
        doc = json.loads(line)  # every line is one JSON object
        assert {"ts", "level", "logger", "message"} <= set(doc), doc
    assert secret not in worker.log_path.read_text()


#: deploy/README.md: "SIGTERM ... exits (under 2 s on the test broker)".
STOP_PROMISED_S = 2.0


def test_sigterm_mid_stream_decides_what_it_polled_commits_it_and_exits_quickly(
        engine_settings, start_worker):
    """Graceful stop, as deploy/README promises it, checked by what a crash would break.

    The orders are still arriving when the worker exits (mid-stream, checked).
    After a graceful stop the orders the worker decided are exactly those below
    the offsets it committed: it decided what it polled, delivered it and
    committed synchronously. A stop without the final commit (an immediate
    exit) leaves decided orders above the committed offsets, and the successor
    decides them a second time; this test counts every order's decisions.
    """
    n, accounts = 3000, [f"acct-{a}" for a in range(100)]
    first = start_worker(engine_settings, name="first")
    wait_ready(engine_settings, first)

    gateway = GatewayProducer(engine_settings)
    for a in accounts:
        gateway.send("auth.events", login(a))
    gateway.flush()
    sent = 0
    stopping = threading.Event()

    def produce() -> None:  # a steady stream, so the stop lands in the middle of it
        nonlocal sent
        for i in range(n):
            gateway.send("orders", order(i, accounts[i % len(accounts)]))
            if i % 100 == 99:
                gateway.flush()
                sent = i + 1
                stopping.wait(0.3)  # ~9 s of orders; the rest at once after the SIGTERM
        gateway.flush()
        sent = n

    producer = threading.Thread(target=produce)
    producer.start()
    deadline = time.monotonic() + 60
    while value(scrape(engine_settings), "tradeguard_orders_consumed_total") < n // 5:
        assert time.monotonic() < deadline, first.log_tail()
        time.sleep(0.1)
    stopped_at = time.monotonic()
    first.process.send_signal(signal.SIGTERM)
    rc = first.process.wait(30)
    took = time.monotonic() - stopped_at
    sent_at_exit = sent
    stopping.set()
    producer.join()
    assert rc == 0, (rc, first.log_tail())
    assert took < STOP_PROMISED_S, (f"SIGTERM to exit took {took:.2f} s; deploy/README.md "
                                    f"promises under {STOP_PROMISED_S:g} s", first.log_tail())
    assert sent_at_exit < n, "the producer had finished: the stop was not mid-stream"

    orders = read_field(engine_settings, "orders", "order_id")
    assert sorted(orders.values()) == sorted(f"o-{i}" for i in range(n))
    committed = committed_offsets(engine_settings, "orders")
    below = {oid for (p, off), oid in orders.items() if off < committed[p]}
    decisions_first = list(read_field(engine_settings, "decisions", "order_id").values())
    assert len(decisions_first) == len(set(decisions_first)), "an order was decided twice"
    # Committed means decided, and decided means committed: nothing polled was lost
    # and nothing decided is left for the successor to decide again.
    assert below, committed
    assert set(decisions_first) == below, (
        f"{len(set(decisions_first) - below)} decided but not committed, "
        f"{len(below - set(decisions_first))} committed but not decided")
    assert len(below) < n, "the first worker decided everything: the stop was not mid-stream"

    second = start_worker(engine_settings, name="second")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        decisions = list(read_field(engine_settings, "decisions", "order_id").values())
        if set(decisions) >= set(orders.values()):
            break
    assert set(decisions) == set(orders.values()), second.log_tail()
    twice = [oid for oid, k in Counter(decisions).items() if k > 1]
    assert not twice, f"{len(twice)} orders decided by both workers, e.g. {twice[:5]}"

    ends = {name: log_ends(read_field(engine_settings, name, key), engine_settings.partitions)
            for name, key in (("orders", "order_id"), ("auth.events", "account_id"))}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the worker commits every commit_interval_s
        committed_all = {name: committed_offsets(engine_settings, name) for name in ends}
        if committed_all == ends:
            break
        time.sleep(0.2)
    assert committed_all == ends
    assert second.stop() == 0
