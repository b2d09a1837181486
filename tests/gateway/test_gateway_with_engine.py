"""The gateway client against a real worker: the engine's own decisions, shared across threads
and asyncio tasks."""

from __future__ import annotations

import asyncio
import threading

import pytest

from gateway_helpers import login, order, sample, wait_until
from streams.records import DECISION
from tradeguard.broker.clients import GatewayProducer
from tradeguard.gateway import GatewayClient

pytestmark = pytest.mark.broker

GENEROUS_MS = 20_000  # correctness here, not speed: the benchmarks measure that


def logged_in(settings, accounts):
    producer = GatewayProducer(settings)
    for a in accounts:
        producer.send("auth.events", login(a))
    producer.flush()


def assert_engine_decided(decision, sent):
    assert decision.decided_by == "engine", decision.summary()
    assert decision.fallback is None and not decision.review
    record = decision.engine
    DECISION.validate(dict(record))
    assert (record["order_id"], record["account_id"], record["ticker"], record["side"],
            record["order_ts"]) == (sent["order_id"], sent["account_id"], sent["ticker"],
                                    sent["side"], sent["ts"])
    assert decision.action == record["action"] and decision.model_version
    assert decision.elapsed_ms < GENEROUS_MS  # woken by the decision, not by the deadline


def test_the_engines_decisions_come_back_within_the_deadline(engine):
    settings, worker = engine
    accounts = [f"acct-seq-{i}" for i in range(5)]
    logged_in(settings, accounts)
    with GatewayClient(settings, mode="fail_open") as gateway:
        sent = [order(accounts[i % 5], ticker=("7203", "6758")[i % 2],
                      side=("buy", "sell")[i % 3 == 0]) for i in range(40)]
        for o in sent:
            assert_engine_decided(gateway.submit(o, GENEROUS_MS), o)
        assert sample(gateway, "tradeguard_gateway_round_trip_seconds_count") == len(sent)
        assert sample(gateway, "tradeguard_gateway_timeouts_total") == 0
        assert gateway.counts() == {"pending": 0, "awaiting": 0}
    assert worker.alive, worker.log_tail()


def test_one_client_is_shared_by_many_threads(engine):
    settings, _ = engine
    threads, per_thread = 12, 25
    accounts = [f"acct-thread-{t}" for t in range(threads)]
    logged_in(settings, accounts)
    answers: dict[int, list] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def gateway_thread(t: int, gateway: GatewayClient) -> None:
        try:
            start.wait()
            mine = [order(accounts[t], side=("buy", "sell")[k % 2]) for k in range(per_thread)]
            answers[t] = [(o, gateway.submit(o, GENEROUS_MS)) for o in mine]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    with GatewayClient(settings, mode="fail_closed") as gateway:
        workers = [threading.Thread(target=gateway_thread, args=(t, gateway))
                   for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(120)
        assert not errors, errors
        assert gateway.counts() == {"pending": 0, "awaiting": 0}
        assert sum(sample(gateway, "tradeguard_gateway_decisions_total", decided_by="engine",
                          action=a) for a in ("allow", "hold", "block")) == threads * per_thread
    for t, pairs in answers.items():  # each thread got the decisions of its own orders
        assert len(pairs) == per_thread
        for sent, decision in pairs:
            assert_engine_decided(decision, sent)


def test_asyncio_tasks_share_one_client(engine):
    settings, _ = engine
    accounts = [f"acct-async-{i}" for i in range(10)]
    logged_in(settings, accounts)

    async def gateway_app() -> list:
        async with GatewayClient(settings, mode="fail_open") as gateway:
            sent = [order(accounts[i % 10], ticker=("7203", "9984")[i % 2]) for i in range(120)]
            decided = await asyncio.gather(*(gateway.submit_async(o, GENEROUS_MS) for o in sent))
            return list(zip(sent, decided))

    for sent, decision in asyncio.run(gateway_app()):
        assert_engine_decided(decision, sent)


def test_a_halt_is_enforced_when_the_engine_is_up_too(engine):
    settings, _ = engine
    logged_in(settings, ["acct-halt"])
    producer = GatewayProducer(settings)
    with GatewayClient(settings, mode="fail_open") as gateway:
        producer.send("controls.tickers", {
            "ticker": "4444", "action": "halt_buys", "reason": "test", "evidence": None,
            "expires_at": None, "source": "test", "ts": 0})
        producer.flush()
        wait_until(lambda: sample(gateway, "tradeguard_gateway_control_records_total",
                                  topic="controls.tickers") >= 1, what="the halt")
        buy = gateway.submit(order("acct-halt", ticker="4444"), GENEROUS_MS)
        assert (buy.action, buy.decided_by, buy.reasons[0]["code"]) == (
            "block", "gateway", "ticker_halted")
        sell = gateway.submit(order("acct-halt", ticker="4444", side="sell"), GENEROUS_MS)
        assert sell.decided_by == "engine"
    producer.send("controls.tickers", {"ticker": "4444", "action": "release", "reason": "test",
                                       "evidence": None, "expires_at": None, "source": "test",
                                       "ts": 0})
    producer.flush()
