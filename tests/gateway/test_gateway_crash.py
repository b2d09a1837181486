"""A worker killed with SIGKILL mid-stream: every order gets exactly one answer at the gateway,
every late disagreement is reported, repeats are dropped, nothing is lost."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from gateway_helpers import (isolated_settings, login, order, read_topic, sample,
                             wait_for_engine, wait_until)
from tradeguard.broker.clients import GatewayProducer
from tradeguard.broker.worker_process import WorkerProcess
from tradeguard.gateway import GatewayClient

pytestmark = pytest.mark.broker

DEADLINE_MS = 400  # the engine answers in tens of ms; a dead one only after its successor starts
#: The killed worker's partitions move after this much silence (the profile's 10 s on Tansu):
#: the gateway's answers do not depend on how long the engine is away, only that it is.
SESSION_MS = 3_000


def test_sigkill_mid_stream_every_order_answered_once_and_reconciled(broker, tmp_path):
    settings = isolated_settings(broker, tmp_path, "crash").with_(
        snapshot_interval_s=1.0, session_timeout_ms=SESSION_MS)
    accounts = [f"acct-{i}" for i in range(24)]
    producer = GatewayProducer(settings)
    for a in accounts:
        producer.send("auth.events", login(a))
    producer.flush()
    first = WorkerProcess(settings, tmp_path / "first.log").start()
    successor = WorkerProcess(settings, tmp_path / "successor.log")
    try:
        wait_for_engine(settings, first)
        late: list = []
        answers: dict[str, object] = {}
        submitted: list[str] = []
        errors: list[BaseException] = []
        stop = threading.Event()

        def gateway_thread(t: int, gateway: GatewayClient) -> None:
            k = 0
            try:
                while not stop.is_set():
                    o = order(accounts[(t * 7 + k) % len(accounts)],
                              ticker=("7203", "6758", "9984")[k % 3], side=("buy", "sell")[k % 2])
                    k += 1
                    submitted.append(o["order_id"])
                    d = gateway.submit(o, DEADLINE_MS)
                    assert d.order_id not in answers, "two answers for one order"
                    answers[d.order_id] = d
                    time.sleep(0.01)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        with GatewayClient(settings, mode="fail_closed",
                           on_late_disagreement=late.append) as gateway:
            threads = [threading.Thread(target=gateway_thread, args=(t, gateway))
                       for t in range(4)]
            for t in threads:
                t.start()
            wait_until(lambda: len(answers) >= 150, 60, "orders decided before the crash")
            first.kill()  # SIGKILL mid-stream: no commit, no goodbye
            successor.start()
            crash_at = len(answers)
            # until the successor answers within the deadline again
            wait_until(lambda: sum(1 for d in list(answers.values())[crash_at:]
                                   if d.decided_by == "engine") >= 100, 120,
                       "the successor's decisions")
            stop.set()
            for t in threads:
                t.join(10)
            assert not errors, errors
            # every fallback gets the engine's late word once the successor catches up
            wait_until(lambda: gateway.counts() == {"pending": 0, "awaiting": 0}, 60,
                       "reconciliation of every fallback")
            metrics = {name: sample(gateway, f"tradeguard_gateway_{name}_total") for name in
                       ("late_decisions", "duplicate_decisions", "unreconciled")}

        # exactly one answer per order
        assert sorted(answers) == sorted(submitted) and len(set(submitted)) == len(submitted)
        fallbacks = {o for o, d in answers.items() if d.decided_by == "gateway"}
        assert fallbacks, "the crash was never felt at the gateway"
        assert all(answers[o].fallback == "fail_closed" and answers[o].action == "hold"
                   for o in fallbacks)

        # the engine's own record of what it decided, repeats included
        ours = set(submitted)
        records = read_topic(settings, "decisions",
                             lambda rs: ours <= {v["order_id"] for *_, v in rs}, 60)
        decided: dict[str, list[dict]] = {}
        for _, _, _, value in sorted(records, key=lambda r: (r[0], r[1])):  # log order
            if value["order_id"] in ours:
                decided.setdefault(value["order_id"], []).append(value)
        assert set(decided) == ours, "an order the engine never decided"
        for o, d in answers.items():  # an engine answer is the first decision in the log
            if d.decided_by == "engine":
                assert dict(d.engine) == decided[o][0]

        disagreeing = {o for o in fallbacks if decided[o][0]["action"] != answers[o].action}
        assert {x.gateway.order_id for x in late} == disagreeing
        assert len(late) == len(disagreeing)  # each reported once
        assert all(x.engine == decided[x.gateway.order_id][0] for x in late)
        assert metrics["late_decisions"] == len(fallbacks)
        assert metrics["unreconciled"] == 0
        repeats = sum(len(v) - 1 for v in decided.values())
        assert metrics["duplicate_decisions"] == repeats
        print(f"{len(answers)} orders, {len(fallbacks)} fallbacks, {len(late)} late "
              f"disagreements, {repeats} repeated decisions dropped")
    finally:
        first.stop()
        successor.stop()
