"""What Kubernetes relies on, against a real worker on the embedded broker.

Readiness turns true only after assignment; /metrics moves when orders flow;
SIGTERM mid-stream loses no decision and leaves the group's offsets committed.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import orjson
import pytest
from worker_probe import (committed_offsets, get, get_json, log_ends, login, order, read_field,
                          scrape, total, value, wait_ready)

from tradeguard.broker.clients import GatewayProducer, TopicReader

pytestmark = pytest.mark.broker


def test_readiness_turns_true_only_after_partitions_are_assigned(engine_settings, start_worker):
    worker = start_worker(engine_settings)
    seen: list[tuple[int | None, dict | None]] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status, body = get_json(engine_settings, "/readyz")
        if status is not None and (not seen or seen[-1][1] != body):
            seen.append((status, body))
        if status == 200:
            break
        assert worker.alive, worker.log_tail()
        time.sleep(0.05)
    statuses = [s for s, _ in seen]
    assert statuses[-1] == 200, (seen, worker.log_tail())
    # The web server answers before the group join: not ready, and says why.
    before = [b for s, b in seen if s == 503]
    assert before and not before[0]["checks"]["partitions_assigned"], seen
    assert all(s == 503 for s in statuses[:-1])
    ready = seen[-1][1]
    assert all(ready["checks"].values())
    assert ready["partitions"] > 0 and ready["partitions"] % engine_settings.partitions == 0

    status, live = get_json(engine_settings, "/healthz")
    assert status == 200 and live["live"] and live["crashed_agents"] == [], live


def test_healthz_cannot_answer_while_the_event_loop_is_stopped(engine_settings, start_worker):
    """A wedged loop fails the probe by timing out; once it runs again the stall is reported."""
    worker = start_worker(engine_settings)
    wait_ready(engine_settings, worker)
    os.kill(worker.process.pid, signal.SIGSTOP)
    try:
        status, error = get(engine_settings, "/healthz", timeout_s=2.0)
        assert status is None and "timed out" in error, (status, error)
    finally:
        time.sleep(1.5)  # stopped for >= 3.5 s in all
        os.kill(worker.process.pid, signal.SIGCONT)
    time.sleep(0.2)
    status, live = get_json(engine_settings, "/healthz")
    assert status == 200 and live["loop_lag_s"] >= 3.0, live


def test_metrics_move_when_orders_flow_and_logs_are_json_lines(engine_settings, start_worker):
    secret = "s3cr3t-never-logged"
    worker = start_worker(engine_settings, TRADEGUARD_LOG_FORMAT="json",
                          TRADEGUARD_SASL_PASSWORD=secret)
    wait_ready(engine_settings, worker)
    before = scrape(engine_settings)
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
    gateway.send("controls.tickers", {
        "ticker": "4592", "action": "halt_buys", "reason": "analyst: targeted ticker",
        "evidence": {}, "expires_at": now + 600_000, "source": "analyst", "ts": now})
    gateway.flush()

    with TopicReader(engine_settings, "decisions") as reader:
        decided = reader.read_until(lambda rs: len(rs) >= n, timeout_s=60)
    assert len(decided) >= n, worker.log_tail()

    deadline = time.monotonic() + 20
    while True:  # counters are read at scrape time; the halt arrives on its own consumer
        after = scrape(engine_settings)
        if (value(after, "tradeguard_active_ticker_halts") == 1
                and total(after, "tradeguard_consumer_lag") == 0) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert value(after, "tradeguard_orders_consumed_total") == n
    assert value(after, "tradeguard_auth_events_consumed_total") == len(accounts)
    assert total(after, "tradeguard_decisions_total") == n
    assert value(after, "tradeguard_decision_latency_seconds_count") == n
    assert value(after, "tradeguard_decision_latency_seconds_bucket", le="+Inf") == n
    assert value(after, "tradeguard_deadletter_total", topic="orders", reason="malformed_json") == 1
    assert value(after, "tradeguard_deadletter_total", topic="orders", reason="wrong_type") == 1
    assert total(after, "tradeguard_batch_size_count", agent="accounts") >= 1
    assert total(after, "tradeguard_batch_size_sum", agent="accounts") == n + len(accounts) + 2
    assert value(after, "tradeguard_active_ticker_halts") == 1
    assert total(after, "tradeguard_model_info") == 1
    lag = {dict(ls)["partition"] for (name, ls) in after if name == "tradeguard_consumer_lag"
           and dict(ls)["topic"] == engine_settings.topic("orders")}
    assert lag == {str(p) for p in range(engine_settings.partitions)}
    assert total(after, "tradeguard_consumer_lag") == 0
    assert all(name.startswith("tradeguard_") for name, _ in after)
    snapshot_age = total(after, "tradeguard_last_snapshot_age_seconds")
    assert snapshot_age >= 0  # present only once the worker wrote a snapshot

    lines = [line for line in worker.log_path.read_text().splitlines() if line.strip()]
    assert lines
    for line in lines:
        doc = json.loads(line)  # every line is one JSON object
        assert {"ts", "level", "logger", "message"} <= set(doc), doc
    assert secret not in worker.log_path.read_text()


def test_sigterm_mid_stream_loses_no_decision_and_commits_offsets(engine_settings, start_worker):
    n, accounts = 3000, [f"acct-{a}" for a in range(100)]
    first = start_worker(engine_settings, name="first")
    wait_ready(engine_settings, first)

    gateway = GatewayProducer(engine_settings)
    for a in accounts:
        gateway.send("auth.events", login(a))
    gateway.flush()

    def produce() -> None:  # a steady stream, so the stop lands in the middle of it
        for i in range(n):
            gateway.send("orders", order(i, accounts[i % len(accounts)]))
            if i % 100 == 99:
                gateway.flush()
                time.sleep(0.3)  # ~9 s of orders
        gateway.flush()

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
    assert rc == 0 and took < 25, (rc, took, first.log_tail())
    producer.join()

    orders = read_field(engine_settings, "orders", "order_id")
    assert len(orders) == n
    ends = log_ends(orders, engine_settings.partitions)
    committed = committed_offsets(engine_settings, "orders")
    assert sum(committed.values()) > 0, committed
    assert any(committed[p] < ends[p] for p in ends), "the stop was not mid-stream"
    # Committed means decided: every order below a committed offset has its decision.
    decided_by_first = set(read_field(engine_settings, "decisions", "order_id").values())
    below = {oid for (p, off), oid in orders.items() if off < committed[p]}
    assert below and below <= decided_by_first, sorted(below - decided_by_first)[:10]

    second = start_worker(engine_settings, name="second")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        decided = set(read_field(engine_settings, "decisions", "order_id").values())
        if decided >= set(orders.values()):
            break
    assert decided == set(orders.values()), second.log_tail()

    ends = {name: log_ends(read_field(engine_settings, name, key), engine_settings.partitions)
            for name, key in (("orders", "order_id"), ("auth.events", "account_id"))}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the worker commits every second
        committed = {name: committed_offsets(engine_settings, name) for name in ends}
        if committed == ends:
            break
        time.sleep(1.0)
    assert committed == ends
    assert second.stop() == 0
